"""Across-cell-type part of the comparison report: pairwise tests and the verdict.

Effect size. For cell types A and B with completed scores ``a`` and ``b``,
``p_best_of_n`` is the probability that the best of ``n`` draws (with
replacement) from the empirical distribution of ``a`` beats the best of ``n``
draws from ``b``, ties counting one half, computed exactly from the two
empirical CDFs (:func:`cellsearch.search.report.stats.p_best_of_n_beats`). ``n`` is the
common per-cell budget: the planned number of trials divided by the number of
searched cell types (at least 1). ``p_single`` is the same for ``n = 1``.

Significance. A two-sided Mann-Whitney U test on the completed scores of each
pair, with Holm's correction over all pairs tested (family-wise alpha 0.05). The
test asks whether one draw of A tends to beat one draw of B, which is exactly
``p_single != 1/2``; it is rank-based (no normality, robust to diverging
outliers) and cheap enough for every pair of a large study. It is conservative
for the best-of-n question (a difference only in the upper tail may go
undetected), and it assumes the scores of a cell type are independent draws,
which holds for random search and only approximately for adaptive samplers.
Pairs where either side has fewer than ``MIN_TEST_SIZE`` completed trials are not
tested.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np

from cellsearch.search.report import stats

ALPHA = 0.05
MIN_TEST_SIZE = 3
TEST_NAME = "two-sided Mann-Whitney U on completed scores, Holm-corrected"
NO_DIFFERENCE = "No detectable difference at this budget"


def compare_cells(scores: dict[str, np.ndarray], *, maximize: bool, budget: int) -> dict[str, Any]:
    """Pairwise effect sizes and Holm-corrected tests between cell types.

    Args:
        scores: Completed, finite scores per cell type (cells with none omitted).
        maximize: False when lower values are better.
        budget: The common per-cell budget ``n`` of the best-of-n probability.

    Returns:
        ``{"n", "alpha", "test", "pairs"}``; each pair holds ``a``, ``b``, sample
        sizes, ``p_best_of_n`` and ``p_single`` (probability that A beats B),
        ``p_value``, ``p_adjusted``, ``reject`` and ``better`` (the winning cell
        type when rejected, else None).
    """
    pairs: list[dict[str, Any]] = []
    for a, b in combinations(sorted(scores), 2):
        pair: dict[str, Any] = {
            "a": a,
            "b": b,
            "n_a": int(scores[a].size),
            "n_b": int(scores[b].size),
            "p_best_of_n": stats.p_best_of_n_beats(scores[a], scores[b], budget, maximize=maximize),
            "p_single": None,
            "p_value": None,
            "p_adjusted": None,
            "reject": False,
            "better": None,
        }
        if min(scores[a].size, scores[b].size) >= MIN_TEST_SIZE:
            effect, p_value = stats.mann_whitney(scores[a], scores[b], maximize=maximize)
            pair.update(p_single=effect, p_value=p_value)
        pairs.append(pair)
    tested = [p for p in pairs if p["p_value"] is not None]
    adjusted, reject = stats.holm([p["p_value"] for p in tested], ALPHA)
    for pair, p_adj, rej in zip(tested, adjusted, reject, strict=True):
        pair["p_adjusted"] = float(p_adj)
        pair["reject"] = bool(rej)
        if rej:
            pair["better"] = pair["a"] if pair["p_single"] > 0.5 else pair["b"]
    return {"n": budget, "alpha": ALPHA, "test": TEST_NAME, "pairs": pairs}


def leader(cells: list[dict[str, Any]], maximize: bool) -> str | None:
    """The cell type with the best expected best-of-n at the common budget."""
    ranked = [c for c in cells if c.get("expected_best_at_budget")]
    if not ranked:
        return None
    sign = 1.0 if maximize else -1.0
    best = max(
        ranked,
        key=lambda c: (sign * c["expected_best_at_budget"]["mean"], sign * c["best"]["value"]),
    )
    return str(best["cell_type"])


def _names(cells: list[str]) -> str:
    return ", ".join(cells)


def verdict(
    comparison: dict[str, Any] | None,
    *,
    lead: str | None,
    compared: list[str],
    n_finished: int,
) -> str:
    """The one-line verdict sentence of the report.

    Args:
        comparison: Output of :func:`compare_cells`, or None when fewer than two
            cell types have completed trials.
        lead: The leading cell type (see :func:`leader`).
        compared: Cell types that have completed trials.
        n_finished: Finished trials in the study (complete, pruned or failed).
    """
    if n_finished == 0:
        return "No finished trials yet: nothing to compare."
    if not compared:
        return f"No completed trials ({n_finished} finished, none completed): nothing to compare."
    if comparison is None or lead is None:
        return f"Only one cell type ({compared[0]}) has completed trials: nothing to compare."
    n, pairs = comparison["n"], comparison["pairs"]
    method = f"{n} trials per cell type; {TEST_NAME}, alpha {ALPHA}"
    if not any(p["p_value"] is not None for p in pairs):
        return (
            "Not enough completed trials to test for a difference "
            f"(need {MIN_TEST_SIZE} per cell type); {lead} leads on expected best-of-{n}."
        )
    detected = [p for p in pairs if p["reject"]]
    if not detected:
        return f"{NO_DIFFERENCE} between {_names(compared)} ({method})."
    beaten = [p["b"] if p["a"] == lead else p["a"] for p in detected if p["better"] == lead]
    tied = [c for c in compared if c != lead and c not in beaten]
    if beaten and not tied:
        return f"{lead} is best: better than {_names(beaten)} ({method})."
    if beaten:
        return (
            f"{lead} leads: better than {_names(beaten)}; no detectable difference "
            f"from {_names(tied)} at this budget ({method})."
        )
    others = "; ".join(
        f"{p['better']} better than {p['b'] if p['better'] == p['a'] else p['a']}" for p in detected
    )
    return (
        f"{lead} leads on expected best-of-{n} but with no detectable difference from "
        f"{_names(tied)} at this budget; detected: {others} ({method})."
    )
