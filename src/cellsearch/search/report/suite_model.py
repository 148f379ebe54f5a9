"""The cross-task report of a suite, typed (pydantic and the standard library only).

Frozen models in the order of the JSON (see :mod:`cellsearch.search.report.suite` for how
the report is made and :mod:`cellsearch.search.report.suite_stats` for its statistics);
like :mod:`.model`, no number is NaN or infinite: missing is None.
"""

from __future__ import annotations

from typing import Literal

from cellsearch.search.report.model import ReportModel

SUITE_SCHEMA_VERSION = 2
ScoreSource = Literal["best_validation", "reevaluated_mean"]
LeftOut = Literal["unlearned", "no_scores", "unfinished", "cancelled", "missing"]
"""Why a task is left out of the ranking: no cell type learned it, no completed trial,
its study has not finished, was cancelled, or was deleted."""


class SuiteFacts(ReportModel):
    """The suite: its cell types, its tasks and how many count (``partial`` when some do
    not); ``n_unlearned`` finished tasks no cell type learned, which are ranked only with
    ``rank_unlearned`` (the template's ``comparison.rank_unlearned``)."""

    name: str
    description: str
    cell_types: list[str]
    n_tasks: int
    n_included: int
    partial: bool
    n_unlearned: int
    rank_unlearned: bool


class SuiteTaskRow(ReportModel):
    """One task: its study and progress, whether it is ``included`` and, if not, why
    (``left_out``) in words (``reason``); the objective of its study (``metric_label`` in
    words), the task's trivial baseline, the best value of any cell type (``best``, of
    ``best_cell``) with the share of the way from the baseline to the objective's best
    possible value it covers (``best_gain``), whether a cell type ``learned`` the task
    (None where it cannot be judged), and where its scores come from."""

    task: str
    study: str
    kind: str
    status: str
    n_finished: int
    n_trials: int
    included: bool
    left_out: LeftOut | None
    reason: str | None
    metric: str | None
    metric_label: str | None
    direction: Literal["minimize", "maximize"] | None
    baseline: float | None
    baseline_description: str | None
    best: float | None
    best_cell: str | None
    best_gain: float | None
    learned: bool | None
    score_source: ScoreSource | None


class UnlearnedTask(ReportModel):
    """A finished task no cell type learned: its baseline, each cell type's best value
    (None: no completed trial) and the margin it missed (``min_gain``)."""

    task: str
    study: str
    metric_label: str | None
    direction: Literal["minimize", "maximize"]
    baseline: float | None
    baseline_description: str | None
    bests: dict[str, float | None]
    best_gain: float | None
    min_gain: float
    ranked: bool


class TaskScore(ReportModel):
    """One cell type's score on one task, in the task's units, with its interval; ``n`` is
    the seeds behind a re-evaluated mean or the completed trials behind a best value; the
    score and interval normalised (1 = the best cell type) and the rank on the task (None
    where the task is left out of the ranks)."""

    value: float
    low: float | None
    high: float | None
    source: ScoreSource
    n: int
    normalised: float | None
    normalised_low: float | None
    normalised_high: float | None
    rank: float | None


class ImanDavenport(ReportModel):
    """The Iman-Davenport F statistic (None when infinite) on ``df1`` and ``df2``."""

    statistic: float | None
    p_value: float
    df1: int
    df2: int


class FriedmanTest(ReportModel):
    """The Friedman test of the average ranks, with Kendall's W."""

    statistic: float
    p_value: float
    df: int
    kendall_w: float
    reject: bool
    iman_davenport: ImanDavenport


class RankPair(ReportModel):
    """A pair's Wilcoxon signed-rank test on normalised scores: ``statistic`` is
    ``min(R+, R-)``; ``reject`` by Holm alone, ``separated`` with the Friedman gate too;
    ``favours`` the side the signed ranks lean to, ``better`` the favoured side when
    rejected; wins, ties and losses of ``a`` against ``b``."""

    a: str
    b: str
    statistic: float
    p_value: float
    p_adjusted: float
    reject: bool
    favours: str | None
    wins: int
    ties: int
    losses: int
    mean_difference: float
    average_rank_difference: float
    separated: bool
    better: str | None


class CriticalDifference(ReportModel):
    """The critical-difference diagram's data: cell types best first with their average
    ranks, cliques no corrected test separates, and the Nemenyi critical difference."""

    order: list[str]
    average_ranks: list[float | None]
    cliques: list[list[str]]
    q_alpha: float | None
    critical_difference: float | None


class SuiteComparison(ReportModel):
    """Cell types compared over tasks (:func:`cellsearch.search.report.suite_stats.
    compare_over_tasks`): the score matrices (tasks by cells; None = no score), ranks, the
    tasks and cells used, the Friedman test, the pairs, the diagram and the verdict."""

    alpha: float
    tie_tol: float
    tasks: list[str]
    cells: list[str]
    maximize: list[bool]
    scores: list[list[float | None]]
    normalised: list[list[float | None]]
    reference: list[Literal["baseline", "worst"]]
    ranks: list[list[float | None]]
    tasks_used: list[str]
    tasks_dropped: list[str]
    cells_compared: list[str]
    cells_dropped: list[str]
    n_tasks: int
    average_ranks: dict[str, float | None]
    min_tasks: int
    min_tasks_to_separate: int
    tested: bool
    friedman: FriedmanTest | None
    pairs: list[RankPair]
    cd: CriticalDifference
    verdict: str


class WinTieLoss(ReportModel):
    """On how many tasks ``a`` scores higher than ``b``, the same, or lower (normalised)."""

    a: str
    b: str
    wins: int
    ties: int
    losses: int


class SuiteReport(ReportModel):
    """The cross-task report of a suite: which cell type ranks best over many tasks?
    ``unlearned`` lists the finished tasks no cell type learned (left out of the ranks
    unless ``suite.rank_unlearned``); ``scores`` maps each included task to each cell
    type's score (None: no score)."""

    schema_version: int
    suite: SuiteFacts
    verdict: str
    warnings: list[str]
    notes: list[str]
    tasks: list[SuiteTaskRow]
    unlearned: list[UnlearnedTask]
    scores: dict[str, dict[str, TaskScore | None]]
    comparison: SuiteComparison | None
    win_tie_loss: list[WinTieLoss]
