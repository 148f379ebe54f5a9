"""What the CLI prints about suites: their studies, progress per study, the cross-task report.

Plain text of at most 80 columns, like the study commands (:mod:`.text`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import typer

from cellsearch.client import Client
from cellsearch.search.report.formatting import percent
from cellsearch.search.report.suite_model import SuiteReport, TaskScore
from cellsearch.service.cli.progress import FINAL_STATUSES, clock
from cellsearch.service.cli.text import echo_lines, num, table, wrap

FINAL_STUDY = (*FINAL_STATUSES, "missing")


def _study_rows(suite: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in suite["studies"]:
        c = s["counts"]
        rows.append([s["task"], s["status"], f"{c['finished']}/{s['n_trials']}",
                     str(c["running"]), str(c["pruned"]), str(c["failed"])])  # fmt: skip
    return rows


def _progress_lines(suite: dict[str, Any], elapsed: float) -> list[str]:
    done = sum(s["status"] in FINAL_STUDY for s in suite["studies"])
    head = (
        f"{suite['name']}: {done}/{len(suite['studies'])} studies ended, "
        f"{suite['finished']}/{suite['n_trials']} trials finished | {clock(elapsed)}"
    )
    headers = ["task", "status", "finished", "running", "pruned", "failed"]
    right = [False, False, True, True, True, True]
    return [*wrap(head), *table(headers, _study_rows(suite), right=right, wrap_column=0)]


def follow_suite(api: Client, name: str, poll: float = 2.0) -> dict[str, Any]:
    """Print the progress of every study (when it changes) until all have ended."""
    start = time.monotonic()
    suite = api.suites.get(name).raw
    last: tuple[Any, ...] | None = None
    while True:
        state = tuple((s["status"], s["counts"]["finished"]) for s in suite["studies"])
        if state != last:
            echo_lines([*_progress_lines(suite, time.monotonic() - start), ""])
            last = state
        if all(s["status"] in FINAL_STUDY for s in suite["studies"]):
            break
        time.sleep(poll)
        suite = api.suites.get(name).raw
    print_suite(suite)
    return suite


def print_suites(suites: list[dict[str, Any]]) -> None:
    if not suites:
        typer.echo("no suites yet: `cellsearch suite submit SUITE.yaml`")
        return
    rows = [
        [s["name"], s["status"], str(s["n_tasks"]), ", ".join(s["cell_types"]),
         f"{s['finished']}/{s['n_trials']}", s["created_at"][:16]]
        for s in suites
    ]  # fmt: skip
    headers = ["name", "status", "tasks", "cells", "trials", "created"]
    echo_lines(table(headers, rows, right=[False, False, True, False, True, False], wrap_column=3))


def print_suite(suite: dict[str, Any]) -> None:
    head = (
        f"{suite['name']}  {suite['status']}  {suite['n_tasks']} tasks  "
        f"{suite['finished']}/{suite['n_trials']} trials finished  "
        f"cells {', '.join(suite['cell_types'])}"
    )
    headers = ["study", "status", "finished", "running", "pruned", "failed"]
    rows = [[s["study"], *row[1:]] for s, row in zip(suite["studies"], _study_rows(suite),
                                                     strict=True)]  # fmt: skip
    right = [False, False, True, True, True, True]
    lines = [*wrap(head), *table(headers, rows, right=right, wrap_column=0)]
    echo_lines([*lines, "", "(`cellsearch show STUDY` for one study's details)"])


def _score_text(score: TaskScore | None) -> str:
    if score is None:
        return "-"
    rank = "" if score.rank is None else f" (#{score.rank:g})"
    return f"{num(score.value)}{rank}"


def _pair_rows(report: SuiteReport) -> list[list[str]]:
    """Per pair of cell types: wins, ties and losses, and the test's outcome."""
    pairs = report.comparison.pairs if report.comparison is not None else []
    tests = {(p.a, p.b): p for p in pairs}
    rows = []
    for w in report.win_tie_loss:
        test = tests.get((w.a, w.b))
        result, p, adjusted = "not tested", "-", "-"
        if test is not None:
            p, adjusted = num(test.p_value, 3), num(test.p_adjusted, 3)
            result = "not separated"
            if test.separated:
                result = f"{test.better} better"
            elif test.reject:
                result = "not separated (Friedman gate)"
        rows.append([w.a, w.b, f"{w.wins}/{w.ties}/{w.losses}", p, adjusted, result])
    return rows


def suite_report_lines(report: SuiteReport) -> list[str]:
    """The verdict, what was left out, scores per task with ranks, and the pairs."""
    lines = wrap(report.verdict)
    for warning in report.warnings:
        lines += wrap(warning, indent="  ", first="warning: ")
    cells = report.suite.cell_types
    rows = [
        [task, *(_score_text(scores.get(c)) for c in cells)]
        for task, scores in report.scores.items()
    ]
    if report.comparison is not None:
        avg = report.comparison.average_ranks
        rows.append(["average rank", *(num(avg.get(c), 3) for c in cells)])
    lines += ["", "score per task (rank 1 = best)"]
    lines += table(["task", *cells], rows, right=[False, *[True] * len(cells)], wrap_column=0)
    lines += _unlearned_lines(report)
    pair_rows = _pair_rows(report)
    if pair_rows:
        headers = ["A", "B", "A wins/ties/losses", "Wilcoxon p", "Holm p", "result"]
        right = [False, False, True, True, True, False]
        lines += ["", *table(headers, pair_rows, right=right, wrap_column=5)]
    return lines


def _unlearned_lines(report: SuiteReport) -> list[str]:
    """The tasks no cell type learned: baseline, each cell type's best, best share."""
    if not report.unlearned:
        return []
    first = report.unlearned[0]
    where = "ranked all the same" if first.ranked else "left out of the ranks and tests"
    cells = report.suite.cell_types
    rows = [
        [u.task, num(u.baseline), *(num(u.bests.get(c)) for c in cells),
         percent(u.best_gain)]
        for u in report.unlearned
    ]  # fmt: skip
    head = (
        f"tasks no cell type learned ({where}; learning: {100 * first.min_gain:.3g}% of "
        "the way from the baseline to the best possible value)"
    )
    headers = ["task", "baseline", *cells, "best share"]
    right = [False, *[True] * (len(cells) + 2)]
    return ["", *wrap(head), *table(headers, rows, right=right, wrap_column=0)]


def print_suite_report(data: Mapping[str, Any]) -> None:
    """Print the suite report the API sent as JSON (see :func:`suite_report_lines`)."""
    echo_lines(suite_report_lines(SuiteReport.model_validate(data)))
