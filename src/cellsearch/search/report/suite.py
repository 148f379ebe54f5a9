"""The cross-task report of a suite: which cell type ranks best over many tasks?

Input: one :class:`SuiteTask` per task of the suite, each carrying its study's
per-study report (:func:`cellsearch.search.report.build_report`) when the study has
finished. :func:`build_suite_report` turns them into one
:class:`~cellsearch.search.report.suite_model.SuiteReport`:

- ``suite``: name, description, cell types, counts of tasks included, left out and
  not learned.
- ``tasks``: one row per task: study, kind, status, progress, metric and direction,
  baseline and best value, whether a cell type learned it, whether it is ``included``
  and, if not, why (``left_out``, ``reason``: still running, paused, cancelled, deleted,
  no scores, not learned; see :mod:`.suite_tasks`).
- ``unlearned``: the finished tasks no cell type learned, with their baselines and each
  cell type's best, left out of the ranks unless ``rank_unlearned``.
- ``scores``: per task and cell type the score (:func:`cell_score`) with its interval,
  its normalised value and interval, and its rank on the task.
- ``comparison``: :func:`cellsearch.search.report.suite_stats.compare_over_tasks` over
  the included tasks (average ranks, Friedman, Wilcoxon + Holm, CD cliques, verdict).
- ``win_tie_loss``: per pair of cell types, on how many tasks the first scores higher,
  the same, or lower (normalised scores).
- ``verdict`` (with the number of tasks it rests on and those left out), ``warnings``
  and ``notes``.

Only finished studies count: a study still running, paused or cancelled short of its
budget would rank cell types on a partial search, so it is listed and left out.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from optuna.trial import FrozenTrial

from cellsearch.search.report import suite_stats
from cellsearch.search.report.build import ReportContext, build_report
from cellsearch.search.report.model import CellSummary, SeedSummary, StudyReport
from cellsearch.search.report.suite_model import (
    SUITE_SCHEMA_VERSION,
    ScoreSource,
    SuiteComparison,
    SuiteFacts,
    SuiteReport,
    SuiteTaskRow,
    TaskScore,
    WinTieLoss,
)
from cellsearch.search.report.suite_tasks import (
    SuiteTask,
    exclusion,
    suite_verdict,
    task_row,
    unlearned_tasks,
)

__all__ = [
    "CellScore",
    "SuiteTask",
    "build_suite_report",
    "cell_score",
    "study_report_for_suite",
    "study_scores",
    "win_tie_loss",
]


@dataclass(frozen=True)
class CellScore:
    """One cell type's score on one task, in the task's own units.

    Attributes:
        value: The score: the re-evaluated mean over seeds when the study has seed
            re-evaluation, else the best validation value of the completed trials.
        low: Lower end of its interval (None where there is none).
        high: Upper end of its interval.
        source: Which of the two the value is.
        n: Seeds behind a re-evaluated mean, or completed trials behind a best value.
    """

    value: float
    low: float | None
    high: float | None
    source: ScoreSource
    n: int


def study_report_for_suite(trials: Sequence[FrozenTrial], context: ReportContext) -> StudyReport:
    """The per-study report of one finished study, as a suite needs it.

    The whole report but hyperparameter importance (its slowest part, which the suite
    does not use), so that a suite of many large studies is ranked in well under a second
    per study.
    """
    return build_report(trials, context, importance=False)


def reevaluated_summary(report: StudyReport, cell_type: str) -> SeedSummary | None:
    """The validation values over seeds of the configuration of ``cell_type`` that the
    study's seed re-evaluation selected, once the re-evaluation has finished (else None)."""
    section = report.reevaluation
    entry = section.cells.get(cell_type) if section is not None and section.complete else None
    if entry is None:
        return None
    chosen = [c for c in entry.configurations if c.of == entry.selected]
    return chosen[0].val if chosen else None


def cell_score(cell: CellSummary, reevaluated: SeedSummary | None = None) -> CellScore | None:
    """The score of one cell type from its summary in a per-study report.

    Args:
        cell: One entry of the per-study report's ``cells``.
        reevaluated: The re-evaluated validation values of its selected configuration
            (:func:`reevaluated_summary`), preferred when given.

    Returns:
        The re-evaluated mean with its bootstrap interval over seeds, else the best
        validation value with its bootstrap interval; None without a completed trial.
    """
    if reevaluated is not None:
        return CellScore(
            value=reevaluated.mean,
            low=reevaluated.ci_low,
            high=reevaluated.ci_high,
            source="reevaluated_mean",
            n=reevaluated.n,
        )
    if cell.best is None:
        return None
    return CellScore(
        value=cell.best.value,
        low=cell.best.ci_low,
        high=cell.best.ci_high,
        source="best_validation",
        n=cell.n_completed,
    )


def study_scores(report: StudyReport) -> dict[str, CellScore]:
    """Every scored cell type of a per-study report, by name.

    One source for the whole task: re-evaluated means when every scored cell type has
    one, otherwise best validation values for all of them (mixing the two would
    compare a mean over seeds with a best-of-many).
    """
    preferred = {
        c.cell_type: cell_score(c, reevaluated_summary(report, c.cell_type)) for c in report.cells
    }
    scored = {name: s for name, s in preferred.items() if s is not None}
    if all(s.source == "reevaluated_mean" for s in scored.values()):
        return scored
    plain = {c.cell_type: cell_score(c) for c in report.cells}
    return {name: s for name, s in plain.items() if s is not None}


def _matrix(
    reports: Sequence[StudyReport], cells: Sequence[str]
) -> tuple[list[dict[str, CellScore]], np.ndarray, list[bool], list[float | None]]:
    """Scores per included task, as dicts and as the ``(N, k)`` matrix with directions."""
    per_task = [study_scores(report) for report in reports]
    values = np.full((len(reports), len(cells)), np.nan)  # (N, k)
    for i, scores in enumerate(per_task):
        for j, cell in enumerate(cells):
            if cell in scores:
                values[i, j] = scores[cell].value
    maximize = [report.study.direction == "maximize" for report in reports]
    baselines = [report.study.baseline for report in reports]
    return per_task, values, maximize, baselines


def _score_rows(
    tasks: Sequence[str],
    cells: Sequence[str],
    per_task: list[dict[str, CellScore]],
    result: SuiteComparison,
    scale: tuple[np.ndarray, np.ndarray],
) -> dict[str, dict[str, TaskScore | None]]:
    """Per task and cell: score, interval, normalised score and interval, rank."""
    ref, span = scale
    out: dict[str, dict[str, TaskScore | None]] = {}
    for i, task in enumerate(tasks):
        sign = 1.0 if result.maximize[i] else -1.0
        row: dict[str, TaskScore | None] = {}
        for j, cell in enumerate(cells):
            score = per_task[i].get(cell)
            if score is None:
                row[cell] = None
                continue
            ends: list[float | None] = [None, None]
            if span[i] > 0 and score.low is not None and score.high is not None:
                mapped = sorted((sign * x - ref[i]) / span[i] for x in (score.low, score.high))
                ends = [float(mapped[0]), float(mapped[1])]
            row[cell] = TaskScore(
                **asdict(score),
                normalised=result.normalised[i][j],
                normalised_low=ends[0],
                normalised_high=ends[1],
                rank=result.ranks[i][j],
            )
        out[task] = row
    return out


def win_tie_loss(result: SuiteComparison) -> list[WinTieLoss]:
    """Wins, ties and losses of every pair of compared cell types over the used tasks.

    ``a`` wins a task when its normalised score exceeds ``b``'s by more than the
    comparison's ``tie_tol``; the same tasks and tolerance as the signed-rank tests.
    """
    cells, tasks = result.cells, result.tasks
    used = [tasks.index(t) for t in result.tasks_used]
    compared = result.cells_compared
    norm = np.array(
        [[result.normalised[i][cells.index(c)] for c in compared] for i in used], dtype=float
    ).reshape(len(used), len(compared))  # (N used, k compared); None: NaN
    rows = []
    for a, b in itertools.combinations(range(len(compared)), 2):
        diff = norm[:, a] - norm[:, b]
        tie = np.abs(diff) <= result.tie_tol
        rows.append(
            WinTieLoss(
                a=compared[a],
                b=compared[b],
                wins=int(np.sum(~tie & (diff > 0))),
                ties=int(np.sum(tie)),
                losses=int(np.sum(~tie & (diff < 0))),
            )
        )
    return rows


def _warnings(rows: Sequence[SuiteTaskRow], result: SuiteComparison | None) -> list[str]:
    out = []
    left = [r for r in rows if not r.included]
    if left:
        names = ", ".join(
            f"{r.task} ({'not learned' if r.left_out == 'unlearned' else r.status})" for r in left
        )
        out.append(f"{len(left)} of {len(rows)} tasks not counted (reasons under tasks): {names}.")
    if result is not None and result.tasks_dropped:
        out.append(
            "Left out of ranks and tests because a compared cell type has no score on "
            f"them: {', '.join(result.tasks_dropped)}."
        )
    if result is not None and result.cells_dropped:
        out.append(f"Cell types with no score on any task: {', '.join(result.cells_dropped)}.")
    return out


def _notes(
    result: SuiteComparison | None, sources: set[str], *, unlearned: bool, ranked: bool
) -> list[str]:
    source = {
        "best_validation": "the best validation value of its completed trials (bootstrap "
        "interval of the best)",
        "reevaluated_mean": "the mean over seeds of its re-evaluated best configuration "
        "(bootstrap interval over seeds)",
    }
    out = [
        "A cell type's score on a task is "
        + " or ".join(source[s] for s in sorted(sources))
        + "; a task uses re-evaluated means only when every cell type has one.",
        "Scores are normalised per task: 1 is the best cell type, 0 the task's trivial "
        "baseline where the report has one and the best beats it, else the worst cell type.",
        "Ranks: 1 is best, ties share their average rank. Friedman test over tasks; "
        "pairwise Wilcoxon signed-rank tests on normalised scores, Holm-corrected; a pair "
        "counts as separated only when the Friedman test rejects too (Demsar 2006; "
        "Benavoli et al. 2016).",
    ]
    if result is not None and not result.tested:
        out.append(
            f"The tests need at least {result.min_tasks} tasks with a score for every "
            f"cell type; {result.min_tasks_to_separate} before any pair can be separated."
        )
    if unlearned:
        out.append(
            "A task no cell type learned (no completed trial covered the study's "
            "comparison.min_gain of the way from the trivial baseline to the best possible "
            "value) ranks the cell types on noise: "
            + (
                "it is ranked here all the same (comparison.rank_unlearned)."
                if ranked
                else "it is listed apart with its baseline and each cell type's best, and "
                "left out of the ranks, the tests and the critical-difference diagram "
                "(comparison.rank_unlearned: true keeps it). A task that only some cell "
                "types learned is ranked: not learning is a real loss."
            )
        )
    return out


def build_suite_report(
    name: str,
    tasks: Sequence[SuiteTask],
    *,
    cell_types: Sequence[str],
    description: str = "",
    alpha: float = 0.05,
    tie_tol: float = 0.0,
    rank_unlearned: bool = False,
) -> SuiteReport:
    """Build the cross-task report of a suite (see the module docstring for its sections).

    Args:
        name: The suite's name.
        tasks: Its tasks, in the suite's order.
        cell_types: The cell types the suite searches, in order.
        description: The suite's description.
        alpha: Family-wise level of the tests.
        tie_tol: Normalised differences within this count as ties.
        rank_unlearned: Rank the tasks no cell type learned too (by default they are
            listed apart and left out of the ranks and tests).
    """
    exclusions = [
        exclusion(
            t,
            t.report is not None and bool(study_scores(t.report)),
            rank_unlearned=rank_unlearned,
        )
        for t in tasks
    ]
    included = [t for t, (kind, _) in zip(tasks, exclusions, strict=True) if kind is None]
    reports = [t.report for t in included if t.report is not None]
    cells = list(cell_types)
    result: SuiteComparison | None = None
    scores: dict[str, dict[str, TaskScore | None]] = {}
    sources: set[str] = {"best_validation"}
    if included:
        labels = [t.task for t in included]
        per_task, values, maximize, baselines = _matrix(reports, cells)
        result = suite_stats.compare_over_tasks(
            values, maximize, cells, labels, baselines=baselines, alpha=alpha, tie_tol=tie_tol
        )
        scale = suite_stats.task_scale(values, maximize, baselines)
        scores = _score_rows(labels, cells, per_task, result, scale)
        sources = {s.source for task in per_task for s in task.values()} or sources
    rows = [
        task_row(task, kind, reason, scores.get(task.task, {}))
        for task, (kind, reason) in zip(tasks, exclusions, strict=True)
    ]
    unlearned = unlearned_tasks(tasks, ranked=rank_unlearned)
    return SuiteReport(
        schema_version=SUITE_SCHEMA_VERSION,
        suite=SuiteFacts(
            name=name,
            description=description,
            cell_types=cells,
            n_tasks=len(tasks),
            n_included=len(included),
            partial=any(kind not in (None, "unlearned") for kind, _ in exclusions),
            n_unlearned=len(unlearned),
            rank_unlearned=rank_unlearned,
        ),
        verdict=suite_verdict(result, rows, rank_unlearned=rank_unlearned),
        warnings=_warnings(rows, result),
        notes=_notes(result, sources, unlearned=bool(unlearned), ranked=rank_unlearned),
        tasks=rows,
        unlearned=unlearned,
        scores=scores,
        comparison=result,
        win_tie_loss=win_tie_loss(result) if result is not None else [],
    )
