"""The comparison report of a study, typed: what a reader of its JSON may rely on.

Frozen pydantic models, one per section, in the order of the JSON (see
:mod:`cellsearch.search.report.build` for how each is made). This module imports pydantic
and the standard library only, so that a client parses a report with
``StudyReport.model_validate_json(body)`` without numpy, optuna or torch. The suite
report's models are in :mod:`.suite_model`.

No number is NaN or infinite (a model refuses them): where there is no number the field
is None. :meth:`StudyReport.to_json` writes the JSON the API serves.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict

SCHEMA_VERSION = 1

ParamValue = bool | int | float | str | None
"""A hyperparameter's value (its JSON type is kept: 1 stays 1, 1.0 stays 1.0)."""


class ReportModel(BaseModel):
    """The base of every report model: frozen, no unknown field, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def to_json(self) -> str:
        """Compact JSON: keys in field order, floats as Python writes them (``1e-05``)."""
        data = self.model_dump(mode="json")
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class StateCounts(ReportModel):
    """Trials by Optuna state."""

    complete: int
    pruned: int
    fail: int
    running: int
    waiting: int


class TrialCounts(ReportModel):
    """Trials by state as the service counts them (``GET /studies/{name}``): ``failed`` are
    model outcomes (diverged, error) and count toward the budget; ``requeued`` (interrupted,
    stale) ran again; ``finished`` = complete + pruned + failed."""

    complete: int
    pruned: int
    failed: int
    requeued: int
    running: int
    waiting: int
    finished: int


class StudyFacts(ReportModel):
    """The study: its spec's facts, its status and its counts.

    ``ranges`` are the searched ranges as ``[low, high, log]``; ``metric_label`` names the
    objective in words, ``metric_low``/``metric_high`` bound its values; ``fixed_params``
    are the hyperparameters the spec fixes; ``reevaluate`` is ``[top_k, seeds]``;
    ``random_draws`` the random phase's trials per cell type; ``partial`` is True unless
    the study has completed.
    """

    study_name: str
    direction: Literal["minimize", "maximize"]
    metric: str
    n_trials: int
    cell_types: list[str]
    allocation: Literal["balanced", "adaptive"]
    seed: int
    status: str
    baseline: float | None
    baseline_description: str | None
    reevaluate: tuple[int, int] | None
    random_draws: int | None
    ranges: dict[str, tuple[float, float, bool]]
    metric_label: str | None
    metric_low: float | None
    metric_high: float | None
    fixed_params: dict[str, ParamValue]
    counts: StateCounts
    trial_counts: TrialCounts
    n_finished: int
    partial: bool


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
    ``n_beat_baseline`` counts completed trials better than the task's baseline (None
    without one).
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


class PairTest(ReportModel):
    """One pair of cell types: completed (``n_a``, ``n_b``) and all (``draws_a``,
    ``draws_b``) draws, P(A's best of n beats B's) and P(one draw of A beats one of B)
    (None below two completed draws a side), the test's p-value, Holm-adjusted, whether
    it rejects and which side is ``better`` when it does."""

    a: str
    b: str
    n_a: int
    n_b: int
    draws_a: int
    draws_b: int
    p_best_of_n: float | None
    p_single: float | None
    p_value: float | None
    p_adjusted: float | None
    reject: bool
    better: str | None
    method: Literal["exact", "permutation", "asymptotic"] | None


class CellComparison(ReportModel):
    """Pairwise tests between cell types on their search draws (``n``: the best of how
    many); ``random_only`` when they rest on the random phase's draws alone."""

    n: int
    alpha: float
    test: str
    random_only: bool
    pairs: list[PairTest]

    @property
    def unit(self) -> str:
        """What ``n`` counts: trials, or the random phase's trials."""
        return "random trials" if self.random_only else "trials"


class SeedComparison(ReportModel):
    """Pairwise tests between the re-evaluated configurations' per-seed values."""

    n: int
    alpha: float
    test: str
    pairs: list[PairTest]


class SeedSummary(ReportModel):
    """One configuration over seeds: mean, sample standard deviation and a bootstrap
    interval of the mean (None with one seed)."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


class ReevaluatedConfiguration(ReportModel):
    """A configuration retrained with fresh seeds: the search trial it repeats (``of``),
    its search value, and its validation (``val``) and test values over seeds."""

    of: int
    params: dict[str, ParamValue] | None
    search_value: float | None
    seeds_finished: int
    failed: int
    val: SeedSummary | None
    test: SeedSummary | None


class ReevaluatedCell(ReportModel):
    """A cell type's re-evaluated configurations, best first, and the one selected."""

    configurations: list[ReevaluatedConfiguration]
    selected: int


class Reevaluation(ReportModel):
    """The seed re-evaluation (see :mod:`cellsearch.search.report.reevaluated`): the verdict
    rests on it once ``complete``; ``means`` are the selected configurations' means."""

    top_k: int
    seeds: int
    finished: int
    complete: bool
    cells: dict[str, ReevaluatedCell]
    comparison: SeedComparison | None
    means: dict[str, float]


class Importances(ReportModel):
    """Normalised hyperparameter importances, largest first, from ``n_trials`` completed
    trials (a seeded subsample when ``subsampled``)."""

    importances: dict[str, float]
    n_trials: int
    subsampled: bool


class CellTypeImportance(ReportModel):
    """The cell type's share of the importance and its rank among ``of`` parameters."""

    share: float
    rank: int
    of: int


class ImportanceSection(ReportModel):
    """Hyperparameter importance over the whole study (the cell type against the rest) and
    within each cell type; None where too few trials completed."""

    method: str
    overall: Importances | None
    cell_type: CellTypeImportance | None
    per_cell: dict[str, Importances | None]


class Allocation(ReportModel):
    """Which cell type each trial used: trial numbers, and completion ranks (1 = first)."""

    trial_number: dict[str, list[int]]
    completion_rank: dict[str, list[int]]


class BootstrapInfo(ReportModel):
    """The bootstrap's replicates and seed (``[study seed, "cell index"]``)."""

    replicates: int
    seed: tuple[int, str]


class Environment(ReportModel):
    """Versions, devices and seeds the trials and the report were made with."""

    torch_versions: list[str]
    cellsearch_versions: list[str]
    optuna_version: str
    report_cellsearch_version: str
    devices: dict[str, int]
    study_seed: int
    trial_seeds_recorded: int
    precisions: dict[str, int]
    bootstrap: BootstrapInfo


class TrialTable(ReportModel):
    """Every trial, column by column (see
    :func:`cellsearch.search.report.details.trial_table`); ``params`` holds a column per
    searched hyperparameter, ``log_scale`` names those sampled on a log scale."""

    number: list[int]
    cell_type: list[str | None]
    state: list[str]
    value: list[float | None]
    epochs: list[int | None]
    seconds: list[float | None]
    param_count: list[int | None]
    params: dict[str, list[ParamValue]]
    log_scale: list[str]


class StudyReport(ReportModel):
    """The comparison report of a study: does the cell type matter, which one wins, how
    sure are we? ``leader`` is the cell type the ``verdict`` names, if any."""

    schema_version: int
    study: StudyFacts
    verdict: str
    leader: str | None
    warnings: list[str]
    notes: list[str]
    cells: list[CellSummary]
    comparison: CellComparison | None
    reevaluation: Reevaluation | None
    importance: ImportanceSection | None
    allocation: Allocation
    environment: Environment
    trials: TrialTable | None

    def to_json(self) -> str:
        """Compact JSON, as the API serves it; the trial table's columns (JSON-ready lists)
        are written as they are, which spares pydantic's serializer 10,000 trials' rows."""
        data = self.model_dump(mode="json", exclude={"trials"})
        data["trials"] = None if self.trials is None else dict(self.trials)
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    def cell(self, cell_type: str) -> CellSummary:
        """The summary of ``cell_type`` (KeyError when the report has none)."""
        for summary in self.cells:
            if summary.cell_type == cell_type:
                return summary
        raise KeyError(cell_type)
