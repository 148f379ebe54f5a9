"""Warnings of the report: things that change how its numbers should be read."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cellsearch.search.report.model import CellSummary

PRUNING_GAP = 0.20
"""Pruning rates of two cell types further apart than this are warned about."""
EDGE = 0.02
"""A best value within this share of its range (log scale for log ranges) of an end is
'on the edge' of the range."""


def partial(status: str, n_finished: int, n_trials: int) -> list[str]:
    """A warning while the study is not completed."""
    if status == "completed":
        return []
    return [
        f"Partial results: the study is {status}; {n_finished} of {n_trials} planned trials "
        "have finished. Numbers will change."
    ]


def adaptive(allocation: str) -> list[str]:
    """A warning when the sampler chose the cell types."""
    if allocation != "adaptive":
        return []
    return [
        "Allocation is adaptive: the sampler chose the cell types, so per-cell samples are "
        "unequal in size and biased toward regions the sampler favoured. Per-cell "
        "statistics and the comparison are not those of an equal, independent search."
    ]


def pruning_rates(cells: Sequence[CellSummary]) -> list[str]:
    """A warning when pruning rates of two cell types differ by more than 20 points.

    The pruner then decided part of the comparison: the cell type pruned more often has
    fewer completed trials, and its failed draws weigh in every statistic.
    """
    rates = {c.cell_type: c.pruning_rate for c in cells if c.pruning_rate is not None}
    if len(rates) < 2:
        return []
    high = max(rates, key=lambda cell: rates[cell])
    low = min(rates, key=lambda cell: rates[cell])
    if rates[high] - rates[low] <= PRUNING_GAP:
        return []
    return [
        f"Pruning rates differ by {100 * (rates[high] - rates[low]):.0f} points ({high} "
        f"{100 * rates[high]:.0f}%, {low} {100 * rates[low]:.0f}%): the pruner, not only the "
        "training, shaped this comparison. Per-cell pruning (allocation: balanced) or "
        "pruner: none compares each cell type with itself."
    ]


def range_edges(
    cells: Sequence[CellSummary], ranges: dict[str, tuple[float, float, bool]]
) -> list[str]:
    """A warning per cell type whose best trial sits on the edge of a searched range: the
    best configuration may lie outside it."""
    out = []
    for cell in cells:
        best = cell.best
        if best is None:
            continue
        edges = []
        for name, value in best.params.items():
            if name not in ranges or not isinstance(value, int | float):
                continue
            low, high, log = ranges[name]
            side = _edge(float(value), low, high, log)
            if side:
                edges.append(f"{name} = {value:.4g} at the {side} of [{low:g}, {high:g}]")
        if edges:
            out.append(
                f"{cell.cell_type}'s best trial (#{best.trial_number}) has "
                f"{'; '.join(edges)}: its best configuration may lie outside the searched "
                "range; consider widening it."
            )
    return out


def _edge(value: float, low: float, high: float, log: bool) -> str | None:
    if high <= low:
        return None
    if log and low > 0 and value > 0:
        value, low, high = math.log(value), math.log(low), math.log(high)
    share = (value - low) / (high - low)
    if share <= EDGE:
        return "bottom"
    if share >= 1 - EDGE:
        return "top"
    return None
