"""Per-cell-type part of the comparison report.

Conventions (documented in the report's notes as well):

- Every finished search trial is one *draw* of the search procedure. A draw either
  completed with a finite value, or failed: it was pruned, diverged or errored. A
  failed draw can never be the best; its value is the worst possible (see
  :mod:`.draw_stats`). The expected best of ``n`` draws counts failed draws that way;
  the best value and the median are those of the completed draws.
- Requeued failures (``stale``: the worker died; ``interrupted``: paused or stopped)
  are not draws: their trials were run again.
- Intervals resting on fewer than two completed draws are not shown (None).
- A PRUNED trial's last intermediate value is the value at pruning, measured after fewer
  epochs; it is summarised separately under ``pruned``.
- Divergence and pruning rates are fractions of the trials that ended with a
  model outcome: COMPLETE, PRUNED, and FAIL except the requeued kinds
  (``stale``: the worker died; ``interrupted``: paused or stopped), whose trials were
  run again (see ``cellsearch.search.record``). A FAIL without a failure kind
  counts as ``"error"``.
- The learning curve pools COMPLETE and PRUNED trials; later epochs therefore
  describe the trials that survived pruning (``n_trials`` says how many).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import (
    COUNTED_FAILURES,
    REQUEUED_FAILURES,
    Attr,
    TrialRecord,
    failure_kind,
    finite,
)
from cellsearch.search.report import details, draw_stats, stats
from cellsearch.search.report.learning import Margin
from cellsearch.search.report.model_base import ParamValue
from cellsearch.search.report.model_cells import (
    BestTrial,
    CellSummary,
    CompletedPoints,
    DrawCounts,
    ExpectedBestAtBudget,
    ExpectedBestCurve,
    FailureCounts,
    LearningCurve,
    PrunedSummary,
    StateCounts,
)

STATE_KEYS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "fail",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
# Above this many completed trials the expected-best curve is evaluated on a
# geometric grid of about this many points instead of at every n.
EVP_MAX_POINTS = 200


def completed_values(trials: Sequence[FrozenTrial]) -> tuple[list[FrozenTrial], np.ndarray]:
    """COMPLETE trials with a finite value, and those values."""
    done = [
        t
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
    ]
    return done, np.fromiter((t.value for t in done), dtype=np.float64, count=len(done))


def draws_of(trials: Sequence[FrozenTrial], maximize: bool) -> draw_stats.Draws:
    """The finished draws of one cell type's search trials (see the module docstring)."""
    _, values = completed_values(trials)
    failed = sum(
        t.state == TrialState.PRUNED
        or (t.state == TrialState.FAIL and failure_kind(t) in COUNTED_FAILURES)
        or (t.state == TrialState.COMPLETE and (t.value is None or not math.isfinite(t.value)))
        for t in trials
    )
    return draw_stats.Draws.of(values, failed, maximize=maximize)


def state_counts(trials: Sequence[FrozenTrial]) -> StateCounts:
    """Number of trials in each state."""
    counts = Counter(STATE_KEYS.get(t.state) for t in trials)
    return StateCounts(**{key: counts.get(key, 0) for key in STATE_KEYS.values()})


def evp_grid(size: int) -> np.ndarray:
    """Trial counts at which the expected-best curve is evaluated: 1..size, thinned."""
    if size <= EVP_MAX_POINTS:
        return np.arange(1, size + 1)
    return np.unique(np.geomspace(1, size, EVP_MAX_POINTS).round().astype(np.int64))


def _outcomes(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    counts = state_counts(trials)
    kinds = Counter(failure_kind(t) for t in trials if t.state == TrialState.FAIL)
    failures = {k: kinds.get(k, 0) for k in COUNTED_FAILURES + REQUEUED_FAILURES}
    requeued = sum(failures[k] for k in REQUEUED_FAILURES)
    outcomes = counts.complete + counts.pruned + counts.fail - requeued
    return {
        "counts": counts,
        "failures": FailureCounts(**failures),
        "n_model_outcomes": outcomes,
        "divergence_rate": failures["diverged"] / outcomes if outcomes else None,
        "pruning_rate": counts.pruned / outcomes if outcomes else None,
    }


def _pruned_summary(trials: Sequence[FrozenTrial]) -> PrunedSummary:
    last = [
        t.intermediate_values[max(t.intermediate_values)]
        for t in trials
        if t.state == TrialState.PRUNED and t.intermediate_values
    ]
    finite_values = [v for v in last if math.isfinite(v)]
    return PrunedSummary(
        count=sum(t.state == TrialState.PRUNED for t in trials),
        median_value_at_pruning=float(np.median(finite_values)) if finite_values else None,
    )


def learning_curve(trials: Sequence[FrozenTrial]) -> LearningCurve | None:
    """Median and inter-quartile band of the intermediate values per epoch."""
    curves = [
        t.intermediate_values
        for t in trials
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.intermediate_values
    ]
    if not curves:
        return None
    epochs = sorted({step for curve in curves for step in curve})
    column = {step: j for j, step in enumerate(epochs)}
    table = np.full((len(curves), len(epochs)), np.nan)  # (trials, epochs)
    for i, curve in enumerate(curves):
        for step, value in curve.items():
            table[i, column[step]] = value
    table[~np.isfinite(table)] = np.nan
    keep = ~np.all(np.isnan(table), axis=0)
    table = table[:, keep]
    q25, median, q75 = np.nanpercentile(table, [25, 50, 75], axis=0)
    return LearningCurve(
        epoch=[int(e) for e, k in zip(epochs, keep, strict=True) if k],
        median=median.tolist(),
        q25=q25.tolist(),
        q75=q75.tolist(),
        n_trials=np.sum(~np.isnan(table), axis=0).tolist(),
    )


def _best(
    done: list[FrozenTrial],
    values: np.ndarray,
    maximize: bool,
    n_bootstrap: int,
    seed: list[int],
    fixed_params: dict[str, ParamValue],
) -> BestTrial:
    index = int(np.argmax(values) if maximize else np.argmin(values))
    trial = done[index]
    low, high = (None, None)
    if draw_stats.can_show(values.size):
        low, high = stats.bootstrap_ci(
            values, maximize=maximize, n_bootstrap=n_bootstrap, seed=seed
        )
    record = TrialRecord.of(trial)
    return BestTrial(
        value=float(values[index]),
        ci_low=low,
        ci_high=high,
        trial_number=trial.number,
        params=record.params,
        param_count=record.param_count,
        seconds_per_epoch=finite(record.seconds_per_epoch),
        test_metric=finite(record.test_metric),
        test_metric_name=record.test_metric_name,
        hyperparameters=details.hyperparameters(trial, fixed_params),
    )


def _expected_best(
    draws: draw_stats.Draws, budget: int, floor: float | None, n_bootstrap: int, seed: list[int]
) -> tuple[ExpectedBestCurve, ExpectedBestAtBudget]:
    grid = evp_grid(draws.size)
    curve = draw_stats.expected_best(draws, grid, floor=floor)
    at = draw_stats.expected_best(draws, [budget], floor=floor)
    low, high = draw_stats.expected_best_ci(
        draws, budget, floor=floor, n_bootstrap=n_bootstrap, seed=seed
    )
    return ExpectedBestCurve(
        n=curve["n"], mean=curve["mean"], std=curve["std"], p_all_failed=curve["p_all_failed"]
    ), ExpectedBestAtBudget(
        n=budget,
        mean=at["mean"][0],
        std=at["std"][0],
        p_all_failed=at["p_all_failed"][0],
        mean_with_floor=None if floor is None else at["mean_with_floor"][0],
        ci_low=low,
        ci_high=high,
        extrapolated=budget > draws.size,
    )


def summarise_cell(
    cell: str,
    trials: Sequence[FrozenTrial],
    *,
    maximize: bool,
    budget: int,
    n_bootstrap: int,
    seed: list[int],
    margin: Margin | None = None,
    fixed_params: dict[str, ParamValue] | None = None,
) -> CellSummary:
    """Summary of one cell type's search trials (see the module docstring for conventions).

    Args:
        margin: The task's baseline and the margin to beat it by
            (:class:`~cellsearch.search.report.learning.Margin`): the completed trials that
            beat it by the margin are counted, and the baseline scores a search whose
            every draw failed in the expected best at the budget; None leaves both out.
        fixed_params: The hyperparameters the spec fixes (see
            :func:`cellsearch.search.report.details.fixed_params`), for the best trial's
            ``hyperparameters``.
    """
    margin = margin or Margin(None, None)
    done, values = completed_values(trials)
    draws = draws_of(trials, maximize)
    best = median = expected = at_budget = None
    if done:
        best = _best(done, values, maximize, n_bootstrap, seed, fixed_params or {})
        median = float(np.median(values))
    if draws.size:
        floor = margin.baseline
        expected, at_budget = _expected_best(draws, budget, floor, n_bootstrap, seed)
    return CellSummary(
        cell_type=cell,
        **_outcomes(trials),
        n_completed=len(done),
        draws=DrawCounts(n=draws.size, completed=draws.n_completed, failed=draws.failed),
        pruned=_pruned_summary(trials),
        learning_curve=learning_curve(trials),
        points=CompletedPoints(
            trial_number=[t.number for t in done],
            value=values.tolist(),
            param_count=[t.user_attrs.get(Attr.PARAM_COUNT) for t in done],
        ),
        best=best,
        median=median,
        expected_best=expected,
        expected_best_at_budget=at_budget,
        n_beat_baseline=margin.count(values.tolist()),
        learned=margin.learned(best.value) if best is not None else None,
        best_gain=margin.gain(best.value) if best is not None else None,
    )
