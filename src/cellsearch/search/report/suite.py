"""The cross-task report of a suite: which cell type ranks best over many tasks?

Input: one :class:`SuiteTask` per task of the suite, each carrying its study's
per-study report (:func:`cellsearch.search.report.build_report`) when the study has
finished. :func:`build_suite_report` turns them into one JSON-ready dict:

- ``suite``: name, description, cell types, counts of tasks included and left out.
- ``tasks``: one row per task: study, kind, status, progress, metric and direction,
  whether it is ``included`` and, if not, the ``reason`` (still running, paused,
  cancelled, deleted, no scores).
- ``scores``: per task and cell type the score (:func:`cell_score`) with its interval,
  its normalised value and interval, and its rank on the task.
- ``comparison``: :func:`cellsearch.search.report.suite_stats.compare_over_tasks` over
  the included tasks (average ranks, Friedman, Wilcoxon + Holm, CD cliques, verdict).
- ``win_tie_loss``: per pair of cell types, on how many tasks the first scores higher,
  the same, or lower (normalised scores).
- ``verdict``, ``warnings`` and ``notes``.

Only finished studies count: a study still running, paused or cancelled short of its
budget would rank cell types on a partial search, so it is listed and left out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from optuna.trial import FrozenTrial

from cellsearch.search.report import suite_stats
from cellsearch.search.report.build import ReportContext, build_report

SCHEMA_VERSION = 1
ScoreSource = Literal["best_validation", "reevaluated_mean"]


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
    report: Mapping[str, Any] | None = None


def study_report_for_suite(trials: Sequence[FrozenTrial], context: ReportContext) -> dict[str, Any]:
    """The per-study report of one finished study, as a suite needs it.

    The whole report but hyperparameter importance (its slowest part, which the suite
    does not use), so that a suite of many large studies is ranked in well under a second
    per study.
    """
    return build_report(trials, context, importance=False)


def _reevaluated(cell: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The seed re-evaluation of a cell's best configuration, when the report has one.

    Read from ``cell["reevaluation"]``: either its ``validation`` summary or the
    summary itself, shaped like :func:`cellsearch.search.report.stats.seed_summary`
    (``n``, ``mean``, ``ci_low``, ``ci_high``).
    """
    section = cell.get("reevaluation")
    if not isinstance(section, Mapping):
        return None
    summary = section.get("validation", section)
    if not isinstance(summary, Mapping) or summary.get("mean") is None:
        return None
    return summary


def cell_score(cell: Mapping[str, Any], *, reevaluated: bool = True) -> CellScore | None:
    """The score of one cell type from its summary in a per-study report.

    Args:
        cell: One entry of the per-study report's ``cells``.
        reevaluated: Prefer the re-evaluated mean over seeds when the report has one.

    Returns:
        The re-evaluated mean with its bootstrap interval over seeds, else the best
        validation value with its bootstrap interval; None without a completed trial.
    """
    summary = _reevaluated(cell) if reevaluated else None
    if summary is not None:
        return CellScore(
            value=float(summary["mean"]),
            low=summary.get("ci_low"),
            high=summary.get("ci_high"),
            source="reevaluated_mean",
            n=int(summary.get("n") or 0),
        )
    best = cell.get("best")
    if not best or best.get("value") is None:
        return None
    return CellScore(
        value=float(best["value"]),
        low=best.get("ci_low"),
        high=best.get("ci_high"),
        source="best_validation",
        n=int(cell.get("n_completed") or 0),
    )


def _with_reevaluation(
    cell: Mapping[str, Any], section: Mapping[str, Any] | None
) -> Mapping[str, Any]:
    """``cell`` with the re-evaluated validation summary of its selected configuration
    (the study report's ``reevaluation`` section), once the re-evaluation has finished."""
    if not section or not section.get("complete"):
        return cell
    entry = (section.get("cells") or {}).get(cell["cell_type"])
    if not entry:
        return cell
    chosen = [c for c in entry["configurations"] if c["of"] == entry["selected"]]
    if not chosen or chosen[0].get("val") is None:
        return cell
    return {**cell, "reevaluation": {"validation": chosen[0]["val"]}}


def study_scores(report: Mapping[str, Any]) -> dict[str, CellScore]:
    """Every scored cell type of a per-study report, by name.

    One source for the whole task: re-evaluated means when every scored cell type has
    one, otherwise best validation values for all of them (mixing the two would
    compare a mean over seeds with a best-of-many).
    """
    cells = [_with_reevaluation(c, report.get("reevaluation")) for c in report.get("cells") or []]
    preferred = {c["cell_type"]: cell_score(c) for c in cells}
    scored = {name: s for name, s in preferred.items() if s is not None}
    if all(s.source == "reevaluated_mean" for s in scored.values()):
        return scored
    plain = {c["cell_type"]: cell_score(c, reevaluated=False) for c in cells}
    return {name: s for name, s in plain.items() if s is not None}


def _exclusion(task: SuiteTask) -> str | None:
    """Why a task is left out of the ranking, or None when it counts."""
    progress = f"{task.n_finished} of {task.n_trials} trials finished"
    if task.status == "missing":
        return "its study was deleted"
    if task.status == "completed" and task.report is not None:
        return None if study_scores(task.report) else "no completed trial of any cell type"
    if task.status == "cancelled":
        return f"cancelled ({progress}): a partial search is not ranked"
    return f"{task.status} ({progress}); counted once it finishes"


def _matrix(
    included: Sequence[SuiteTask], cells: Sequence[str]
) -> tuple[list[dict[str, CellScore]], np.ndarray, list[bool], list[float | None]]:
    """Scores per included task, as dicts and as the ``(N, k)`` matrix with directions."""
    per_task = [study_scores(t.report or {}) for t in included]
    values = np.full((len(included), len(cells)), np.nan)  # (N, k)
    for i, scores in enumerate(per_task):
        for j, cell in enumerate(cells):
            if cell in scores:
                values[i, j] = scores[cell].value
    maximize = [(t.report or {})["study"]["direction"] == "maximize" for t in included]
    baselines = [(t.report or {})["study"].get("baseline") for t in included]
    return per_task, values, maximize, baselines


def _score_rows(
    included: Sequence[SuiteTask],
    cells: Sequence[str],
    per_task: list[dict[str, CellScore]],
    result: Mapping[str, Any],
    scale: tuple[np.ndarray, np.ndarray],
) -> dict[str, dict[str, Any]]:
    """Per task and cell: score, interval, normalised score and interval, rank."""
    ref, span = scale
    out: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(included):
        sign = 1.0 if result["maximize"][i] else -1.0
        row: dict[str, Any] = {}
        for j, cell in enumerate(cells):
            score = per_task[i].get(cell)
            if score is None:
                row[cell] = None
                continue
            ends: list[float | None] = [None, None]
            if span[i] > 0 and score.low is not None and score.high is not None:
                mapped = sorted((sign * x - ref[i]) / span[i] for x in (score.low, score.high))
                ends = [float(mapped[0]), float(mapped[1])]
            row[cell] = {
                **asdict(score),
                "normalised": result["normalised"][i][j],
                "normalised_low": ends[0],
                "normalised_high": ends[1],
                "rank": result["ranks"][i][j],
            }
        out[task.task] = row
    return out


def win_tie_loss(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Wins, ties and losses of every pair of compared cell types over the used tasks.

    ``a`` wins a task when its normalised score exceeds ``b``'s by more than the
    comparison's ``tie_tol``; the same tasks and tolerance as the signed-rank tests.
    """
    cells, tasks = result["cells"], result["tasks"]
    used = [tasks.index(t) for t in result["tasks_used"]]
    compared = result["cells_compared"]
    norm = np.array(
        [[result["normalised"][i][cells.index(c)] for c in compared] for i in used], dtype=float
    ).reshape(len(used), len(compared))  # (N used, k compared)
    rows = []
    for a, b in itertools.combinations(range(len(compared)), 2):
        diff = norm[:, a] - norm[:, b]
        tie = np.abs(diff) <= result["tie_tol"]
        rows.append(
            {
                "a": compared[a],
                "b": compared[b],
                "wins": int(np.sum(~tie & (diff > 0))),
                "ties": int(np.sum(tie)),
                "losses": int(np.sum(~tie & (diff < 0))),
            }
        )
    return rows


def _warnings(rows: Sequence[Mapping[str, Any]], result: Mapping[str, Any] | None) -> list[str]:
    out = []
    left = [r for r in rows if not r["included"]]
    if left:
        names = ", ".join(f"{r['task']} ({r['status']})" for r in left)
        out.append(f"{len(left)} of {len(rows)} tasks not counted (reasons under tasks): {names}.")
    if result is not None and result["tasks_dropped"]:
        out.append(
            "Left out of ranks and tests because a compared cell type has no score on "
            f"them: {', '.join(result['tasks_dropped'])}."
        )
    if result is not None and result["cells_dropped"]:
        out.append(f"Cell types with no score on any task: {', '.join(result['cells_dropped'])}.")
    return out


def _notes(result: Mapping[str, Any] | None, sources: set[str]) -> list[str]:
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
    if result is not None and not result["tested"]:
        out.append(
            f"The tests need at least {result['min_tasks']} tasks with a score for every "
            f"cell type; {result['min_tasks_to_separate']} before any pair can be separated."
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
) -> dict[str, Any]:
    """Build the cross-task report of a suite (see the module docstring for its sections).

    Args:
        name: The suite's name.
        tasks: Its tasks, in the suite's order.
        cell_types: The cell types the suite searches, in order.
        description: The suite's description.
        alpha: Family-wise level of the tests.
        tie_tol: Normalised differences within this count as ties.

    Returns:
        A JSON-serialisable dict (no NaN: missing numbers are None).
    """
    rows: list[dict[str, Any]] = []
    included: list[SuiteTask] = []
    for task in tasks:
        reason = _exclusion(task)
        study = (task.report or {}).get("study", {}) if reason is None else {}
        rows.append(
            {
                "task": task.task,
                "study": task.study,
                "kind": task.kind,
                "status": task.status,
                "n_finished": task.n_finished,
                "n_trials": task.n_trials,
                "included": reason is None,
                "reason": reason,
                "metric": study.get("metric"),
                "direction": study.get("direction"),
                "baseline": study.get("baseline"),
            }
        )
        if reason is None:
            included.append(task)
    cells = list(cell_types)
    result: dict[str, Any] | None = None
    scores: dict[str, dict[str, Any]] = {}
    sources: set[str] = {"best_validation"}
    if included:
        per_task, values, maximize, baselines = _matrix(included, cells)
        result = suite_stats.compare_over_tasks(
            values, maximize, cells, [t.task for t in included],
            baselines=baselines, alpha=alpha, tie_tol=tie_tol,
        )  # fmt: skip
        scale = suite_stats.task_scale(values, maximize, baselines)
        scores = _score_rows(included, cells, per_task, result, scale)
        sources = {s.source for task in per_task for s in task.values()} or sources
    for row in rows:
        cell_rows = scores.get(row["task"], {})
        row["score_source"] = next((c["source"] for c in cell_rows.values() if c), None)
    return {
        "schema_version": SCHEMA_VERSION,
        "suite": {
            "name": name,
            "description": description,
            "cell_types": cells,
            "n_tasks": len(tasks),
            "n_included": len(included),
            "partial": len(included) < len(tasks),
        },
        "verdict": _verdict(result, rows),
        "warnings": _warnings(rows, result),
        "notes": _notes(result, sources),
        "tasks": rows,
        "scores": scores,
        "comparison": result,
        "win_tie_loss": win_tie_loss(result) if result is not None else [],
    }


def _verdict(result: Mapping[str, Any] | None, rows: Sequence[Mapping[str, Any]]) -> str:
    if result is None:
        waiting = sum(r["status"] in ("running", "paused") for r in rows)
        return (
            f"no finished study yet: nothing to rank ({waiting} of {len(rows)} studies "
            "still running or paused)"
        )
    return str(result["verdict"])
