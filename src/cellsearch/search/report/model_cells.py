"""The per-cell-type sections of the study report, typed (pydantic and the standard
library only; see :mod:`cellsearch.search.report.cells` for how they are made)."""

from __future__ import annotations

from cellsearch.search.report.model_base import ParamValue, ReportModel


class StateCounts(ReportModel):
    """Trials by Optuna state."""

    complete: int
    pruned: int
    fail: int
    running: int
    waiting: int


class FailureCounts(ReportModel):
    """Failed trials by kind (:data:`cellsearch.search.record.COUNTED_FAILURES` and
    ``REQUEUED_FAILURES``): ``diverged`` and ``error`` are model outcomes; ``interrupted``,
    ``stale`` and ``setup`` (failed before training) were requeued and ran again."""

    diverged: int
    error: int
    interrupted: int
    stale: int
    setup: int


class DrawCounts(ReportModel):
    """Finished draws of a cell type's search: ``n`` = ``completed`` + ``failed``."""

    n: int
    completed: int
    failed: int


class PrunedSummary(ReportModel):
    """Pruned trials and the median of their values at pruning (after fewer epochs)."""

    count: int
    median_value_at_pruning: float | None


class LearningCurve(ReportModel):
    """Median and inter-quartile band of the objective per epoch, over the complete and
    pruned trials; ``n_trials`` says how many reached each epoch."""

    epoch: list[int]
    median: list[float]
    q25: list[float]
    q75: list[float]
    n_trials: list[int]


class CompletedPoints(ReportModel):
    """The completed trials of a cell type, column by column."""

    trial_number: list[int]
    value: list[float]
    param_count: list[int | None]


class BestTrial(ReportModel):
    """A cell type's best completed trial: its value with a bootstrap interval of the best
    (None below two completed trials), its sampled ``params`` and every
    ``hyperparameters`` (sampled, fixed by the spec, or derived)."""

    value: float
    ci_low: float | None
    ci_high: float | None
    trial_number: int
    params: dict[str, ParamValue]
    param_count: int | None
    seconds_per_epoch: float | None
    test_metric: float | None
    test_metric_name: str | None
    hyperparameters: dict[str, ParamValue]


class ExpectedBestCurve(ReportModel):
    """Expected best after ``n`` draws (given one completed; None when none did), its
    standard deviation, and the probability that all ``n`` draws fail."""

    n: list[int]
    mean: list[float | None]
    std: list[float | None]
    p_all_failed: list[float]


class ExpectedBestAtBudget(ReportModel):
    """The expected best at the per-cell budget ``n``, with a bootstrap interval;
    ``mean_with_floor`` scores a search that completed nothing at the task's baseline;
    ``extrapolated`` when ``n`` exceeds the draws seen."""

    n: int
    mean: float | None
    std: float | None
    p_all_failed: float
    mean_with_floor: float | None
    ci_low: float | None
    ci_high: float | None
    extrapolated: bool


class CellSummary(ReportModel):
    """One cell type's search trials (see :mod:`cellsearch.search.report.cells`).

    Rates are shares of ``n_model_outcomes`` (trials that ended with a model outcome);
    ``n_beat_baseline`` counts the completed trials that beat the task's baseline by the
    study's margin (``study.min_gain``), ``learned`` says whether any did and
    ``best_gain`` is the share of the way from the baseline to the objective's best
    possible value that the best trial covered (each None without a baseline, the last
    two also without a completed trial).
    """

    cell_type: str
    counts: StateCounts
    failures: FailureCounts
    n_model_outcomes: int
    divergence_rate: float | None
    pruning_rate: float | None
    n_completed: int
    draws: DrawCounts
    pruned: PrunedSummary
    learning_curve: LearningCurve | None
    points: CompletedPoints
    best: BestTrial | None
    median: float | None
    expected_best: ExpectedBestCurve | None
    expected_best_at_budget: ExpectedBestAtBudget | None
    n_beat_baseline: int | None
    learned: bool | None
    best_gain: float | None
