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

from cellsearch.search.report.model_base import ParamValue, ReportModel
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
from cellsearch.search.report.model_importance import (
    CellTypeImportance,
    Importances,
    ImportanceSection,
    ParamImportance,
)
from cellsearch.search.report.model_sections import (
    Allocation,
    BootstrapInfo,
    CellComparison,
    Environment,
    PairTest,
    ReevaluatedCell,
    ReevaluatedConfiguration,
    Reevaluation,
    SeedComparison,
    SeedSummary,
    TrialTable,
)

SCHEMA_VERSION = 2


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
    ``random_draws`` the random phase's trials per cell type; ``baseline`` is the task's
    trivial predictor's value of the objective and ``min_gain`` the share of the way from
    it to the objective's best possible value a trial must cover to have learned the task
    (:mod:`cellsearch.search.report.learning`); ``learned`` says whether any cell type did
    (None without a baseline or a completed trial); ``partial`` is True unless the study
    has completed.
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
    min_gain: float
    learned: bool | None
    counts: StateCounts
    trial_counts: TrialCounts
    n_finished: int
    partial: bool


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


__all__ = [
    "SCHEMA_VERSION",
    "Allocation",
    "BestTrial",
    "BootstrapInfo",
    "CellComparison",
    "CellSummary",
    "CellTypeImportance",
    "CompletedPoints",
    "DrawCounts",
    "Environment",
    "ExpectedBestAtBudget",
    "ExpectedBestCurve",
    "FailureCounts",
    "ImportanceSection",
    "Importances",
    "LearningCurve",
    "PairTest",
    "ParamImportance",
    "ParamValue",
    "PrunedSummary",
    "ReevaluatedCell",
    "ReevaluatedConfiguration",
    "Reevaluation",
    "ReportModel",
    "SeedComparison",
    "SeedSummary",
    "StateCounts",
    "StudyFacts",
    "StudyReport",
    "TrialCounts",
    "TrialTable",
]
