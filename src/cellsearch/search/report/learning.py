"""Learned or not: the margin a trial must gain over the task's trivial baseline.

A trial's *gain* is the share of the way from the baseline ``b`` to the objective's best
possible value ``v*`` (0 for a loss, 1 for an accuracy) that its value ``v`` covers:

    gain = (b - v) / (b - v*)    when the objective is minimised,
    gain = (v - b) / (v* - b)    when it is maximised,

so the baseline scores 0 and a perfect model 1, whatever the task's units. A trial has
*learned* the task when its gain is at least ``comparison.min_gain`` (and above 0); a
cell type has learned it when one of its completed trials has; a study, when one of its
cell types has. Without a baseline, or an objective with no best possible value, nothing
is judged (None).

Why 5% by default. ``benchmarks/learned_margin.py`` trains 8 random configurations per
cell type on each task of ``examples/suite-small.yaml`` as its template sets them (15
epochs, batch size 32), and on the two tasks it dropped. Where a cell type learned
nothing, its best trial stayed within 1.9% of the baseline (rnn_tanh on the adding
problem 1.9% and on the copy task 0%, GunPoint's lstm and rnn_tanh 0.6% and 1.2%, the
copy task with 1,000 training sequences -0.2% for lstm and rnn_tanh); in an earlier run
with other draws, within 3.6% (lstm on that copy task, part of its memory found). Where
a cell type learned, its best trial covered 8.9% (one GunPoint trial of eight, on 10
validation series) and 9.1% (airline's lstm against persistence) at the least, and
mostly 28% to 99.9%. A margin of 5% sits above what noise gives and below the smallest
real gains; :data:`cellsearch.search.study.comparison.MIN_GAIN` holds it. A validation
split of a few sequences makes single values noisy: there the best of many trials can
clear any small margin by chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cellsearch.search.report.formatting import number, percent
from cellsearch.search.study.comparison import MIN_GAIN

__all__ = ["MIN_GAIN", "CellBest", "Margin", "unlearned_verdict", "unlearned_warnings"]


@dataclass(frozen=True)
class Margin:
    """What a value must reach to count as learned.

    Attributes:
        baseline: The trivial predictor's value of the objective, or None.
        ideal: The objective's best possible value, or None where it has none.
        min_gain: The share of the way from ``baseline`` to ``ideal`` to cover.
        maximize: Whether larger values are better.
    """

    baseline: float | None
    ideal: float | None
    min_gain: float = MIN_GAIN
    maximize: bool = False

    @classmethod
    def of(
        cls,
        baseline: float | None,
        *,
        low: float | None,
        high: float | None,
        min_gain: float,
        maximize: bool,
    ) -> Margin:
        """The margin of an objective bounded by ``low`` and ``high`` (either None)."""
        return cls(baseline, high if maximize else low, min_gain, maximize)

    @property
    def known(self) -> bool:
        """Whether values can be judged: a baseline short of a best possible value."""
        if self.baseline is None or self.ideal is None:
            return False
        return (self.ideal - self.baseline) * (1 if self.maximize else -1) > 0

    def gain(self, value: float | None) -> float | None:
        """The share of the way from the baseline to the best possible value that
        ``value`` covers (negative when worse than the baseline); None when unknown."""
        if value is None or not self.known:
            return None
        assert self.baseline is not None and self.ideal is not None
        return (value - self.baseline) / (self.ideal - self.baseline)

    def learned(self, value: float | None) -> bool | None:
        """Whether ``value`` clears the margin (None when it cannot be judged)."""
        found = self.gain(value)
        if found is None:
            return None
        return found > 0 and found >= self.min_gain

    def count(self, values: Sequence[float]) -> int | None:
        """How many of ``values`` clear the margin (None when it cannot be judged)."""
        if not self.known:
            return None
        return sum(bool(self.learned(v)) for v in values)


def _target(margin: Margin) -> str:
    return (
        f"{percent(margin.min_gain)} of the way from the baseline to "
        f"{number(margin.ideal)} counts as learning"
    )


@dataclass(frozen=True)
class CellBest:
    """A cell type's best completed value, for the sentences below."""

    cell_type: str
    value: float
    trial_number: int


def unlearned_verdict(
    bests: Sequence[CellBest],
    margin: Margin,
    *,
    label: str,
    baseline_description: str | None,
    partial: bool,
) -> str:
    """The verdict of a study in which no cell type learned the task (``bests``: each cell
    type's best completed value), and what to change."""
    sign = 1.0 if margin.maximize else -1.0
    best = max(bests, key=lambda b: sign * b.value)
    about = f" ({baseline_description})" if baseline_description else ""
    when = "has learned this task yet" if partial else "learned this task at this budget"
    return (
        f"No cell type {when}: the best {label} is {number(best.value)} ({best.cell_type}, "
        f"trial #{best.trial_number}) against the baseline {number(margin.baseline)}{about}, "
        f"{percent(margin.gain(best.value))} of the way to {number(margin.ideal)} where "
        f"{percent(margin.min_gain)} counts as learning (comparison.min_gain). Raise "
        "budget.max_epochs, widen the learning rate or the hidden size range, or give the "
        "task more optimiser steps (more training data, a smaller batch_size)."
    )


def unlearned_warnings(bests: Sequence[CellBest], margin: Margin, *, label: str) -> list[str]:
    """One warning per cell type that did not learn the task while another did."""
    return [
        f"{b.cell_type} did not learn this task: its best {label} {number(b.value)} is "
        f"{percent(margin.gain(b.value))} of the way from the baseline "
        f"{number(margin.baseline)} to {number(margin.ideal)}; {_target(margin)}."
        for b in bests
        if margin.learned(b.value) is False
    ]
