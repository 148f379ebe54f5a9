"""The tasks of a suite report: which count, which are left out and why, and the verdict's
account of them.

A task counts once its study has completed with a score for some cell type, and some
cell type learned it (:mod:`cellsearch.search.report.learning`): a task that no cell type
learned ranks the cell types on noise, so by default it is listed apart
(:class:`~cellsearch.search.report.suite_model.UnlearnedTask`) with its baseline and each
cell type's best, and left out of the ranks, the tests and the critical-difference
diagram; the template's ``comparison.rank_unlearned`` keeps it in. A task that only some
cell types learned stays in: not learning is a real loss. A task without a baseline
cannot be judged and counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cellsearch.search.report.formatting import number, percent
from cellsearch.search.report.model import StudyReport
from cellsearch.search.report.suite_model import (
    LeftOut,
    SuiteComparison,
    SuiteTaskRow,
    TaskScore,
    UnlearnedTask,
)


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite as the report sees it.

    Attributes:
        task: The task's label in the suite (its study is ``<suite>-<task>``).
        study: The study's name.
        kind: The task's kind (``adding``, ``ucr``...).
        status: The study's status, or ``"missing"`` when it was deleted.
        n_finished: Finished trials of the study.
        n_trials: The study's budget.
        report: Its per-study report; needed only when ``status`` is ``"completed"``.
    """

    task: str
    study: str
    kind: str
    status: str
    n_finished: int
    n_trials: int
    report: StudyReport | None = None


def best_of(report: StudyReport) -> tuple[str, float, float | None] | None:
    """The best completed value of any cell type: (cell type, value, gain), or None."""
    sign = 1.0 if report.study.direction == "maximize" else -1.0
    found = [c for c in report.cells if c.best is not None]
    if not found:
        return None
    top = max(found, key=lambda c: sign * c.best.value if c.best is not None else 0.0)
    assert top.best is not None
    return top.cell_type, top.best.value, top.best_gain


def exclusion(
    task: SuiteTask, scored: bool, *, rank_unlearned: bool
) -> tuple[LeftOut | None, str | None]:
    """Why a task is left out of the ranking (kind and words), or ``(None, None)``.

    Args:
        task: The task.
        scored: Whether some cell type has a score on it.
        rank_unlearned: Whether tasks no cell type learned are ranked too.
    """
    progress = f"{task.n_finished} of {task.n_trials} trials finished"
    if task.status == "missing":
        return "missing", "its study was deleted"
    if task.status == "completed" and task.report is not None:
        if not scored:
            return "no_scores", "no completed trial of any cell type"
        study = task.report.study
        if study.learned is False and not rank_unlearned:
            best = best_of(task.report)
            shown = "" if best is None else f"best {number(best[1])} ({best[0]}), "
            return "unlearned", (
                f"no cell type learned it: {shown}baseline {number(study.baseline)}, "
                f"{percent(best[2] if best else None)} of the way where "
                f"{percent(study.min_gain)} counts"
            )
        return None, None
    if task.status == "cancelled":
        return "cancelled", f"cancelled ({progress}): a partial search is not ranked"
    return "unfinished", f"{task.status} ({progress}); counted once it finishes"


def task_row(
    task: SuiteTask,
    left_out: LeftOut | None,
    reason: str | None,
    scores: dict[str, TaskScore | None],
) -> SuiteTaskRow:
    """The row of one task: its study, progress, whether it counts, its objective, its
    baseline and its best value."""
    study = task.report.study if task.report is not None else None
    best = best_of(task.report) if task.report is not None else None
    return SuiteTaskRow(
        task=task.task,
        study=task.study,
        kind=task.kind,
        status=task.status,
        n_finished=task.n_finished,
        n_trials=task.n_trials,
        included=left_out is None,
        left_out=left_out,
        reason=reason,
        metric=study.metric if study is not None else None,
        metric_label=study.metric_label if study is not None else None,
        direction=study.direction if study is not None else None,
        baseline=study.baseline if study is not None else None,
        baseline_description=study.baseline_description if study is not None else None,
        best=best[1] if best else None,
        best_cell=best[0] if best else None,
        best_gain=best[2] if best else None,
        learned=study.learned if study is not None else None,
        score_source=next((c.source for c in scores.values() if c), None),
    )


def unlearned_tasks(tasks: Sequence[SuiteTask], *, ranked: bool) -> list[UnlearnedTask]:
    """The finished tasks no cell type learned, with each cell type's best value."""
    out = []
    for task in tasks:
        report = task.report
        if task.status != "completed" or report is None or report.study.learned is not False:
            continue
        best = best_of(report)
        out.append(
            UnlearnedTask(
                task=task.task,
                study=task.study,
                metric_label=report.study.metric_label,
                direction=report.study.direction,
                baseline=report.study.baseline,
                baseline_description=report.study.baseline_description,
                bests={c.cell_type: c.best.value if c.best else None for c in report.cells},
                best_gain=best[2] if best else None,
                min_gain=report.study.min_gain,
                ranked=ranked,
            )
        )
    return out


_WORDS: dict[LeftOut, str] = {
    "unlearned": "no cell type learned",
    "no_scores": "no completed trial",
    "unfinished": "not finished",
    "cancelled": "cancelled",
    "missing": "deleted",
}


def _left_out(rows: Sequence[SuiteTaskRow]) -> str:
    """The tasks left out, grouped by why: ``"gunpoint, copy-t10 (no cell type learned)"``."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        if row.left_out is not None:
            groups.setdefault(_WORDS[row.left_out], []).append(row.task)
    return "; ".join(f"{', '.join(names)} ({why})" for why, names in groups.items())


def suite_verdict(
    result: SuiteComparison | None, rows: Sequence[SuiteTaskRow], *, rank_unlearned: bool
) -> str:
    """The suite's sentence: the comparison's verdict, how many tasks it rests on, and
    which tasks were left out and why."""
    counted = sum(r.included for r in rows)
    left = _left_out(rows)
    if result is None:
        waiting = sum(r.status in ("running", "paused") for r in rows)
        if any(r.left_out == "unlearned" for r in rows):
            return f"no task to rank: left out {left}"
        return (
            f"no finished study yet: nothing to rank ({waiting} of {len(rows)} studies "
            "still running or paused)"
        )
    text = f"{result.verdict} (ranked on {counted} of {len(rows)} tasks"
    text += f"; left out: {left})" if left else ")"
    unlearned_ranked = [r.task for r in rows if r.included and r.learned is False]
    if rank_unlearned and unlearned_ranked:
        text += (
            f"; ranked although no cell type learned them (comparison.rank_unlearned): "
            f"{', '.join(unlearned_ranked)}"
        )
    return text
