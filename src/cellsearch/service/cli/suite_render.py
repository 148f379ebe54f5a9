"""What the CLI prints about suites: their studies, progress per study, the cross-task report."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellsearch.service.cli.client import Api
from cellsearch.service.cli.render import FINAL_STATUSES, console

FINAL_STUDY = (*FINAL_STATUSES, "missing")


def follow_suite(api: Api, name: str, poll: float = 1.0) -> dict[str, Any]:
    """One progress bar per study until every study of the suite has ended."""
    suite = api.suite(name)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        bars = {
            s["study"]: progress.add_task(s["task"], total=max(1, s["n_trials"]), detail="")
            for s in suite["studies"]
        }
        while True:
            for s in suite["studies"]:
                c = s["counts"]
                detail = f"{s['status']}  running {c['running']}  pruned {c['pruned']}"
                detail += f"  failed {c['failed']}"
                progress.update(bars[s["study"]], completed=c["finished"], detail=detail)
            if all(s["status"] in FINAL_STUDY for s in suite["studies"]):
                break
            time.sleep(poll)
            suite = api.suite(name)
    print_suite(suite)
    return suite


def print_suites(suites: list[dict[str, Any]]) -> None:
    table = Table("name", "status", "tasks", "cells", "studies", "trials", "created")
    for s in suites:
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(s["studies_by_status"].items()))
        table.add_row(
            s["name"],
            s["status"],
            str(s["n_tasks"]),
            ", ".join(s["cell_types"]),
            by_status,
            f"{s['finished']}/{s['n_trials']}",
            s["created_at"][:19],
        )
    console.print(table if suites else "no suites yet: `cellsearch suite submit SUITE.yaml`")


def print_suite(suite: dict[str, Any]) -> None:
    console.print(
        f"[bold]{suite['name']}[/bold]  {suite['status']}  {suite['n_tasks']} tasks  "
        f"{suite['finished']}/{suite['n_trials']} trials finished  "
        f"cells {', '.join(suite['cell_types'])}"
    )
    table = Table("task", "study", "kind", "status", "finished", "running", "pruned", "failed")
    for s in suite["studies"]:
        c = s["counts"]
        table.add_row(
            s["task"], s["study"], s["kind"], s["status"], f"{c['finished']}/{s['n_trials']}",
            str(c["running"]), str(c["pruned"]), str(c["failed"]),
        )  # fmt: skip
    console.print(table)


def _score_text(score: dict[str, Any] | None) -> str:
    if score is None:
        return "-"
    rank = "" if score["rank"] is None else f" (#{score['rank']:g})"
    return f"{score['value']:.4g}{rank}"


def print_suite_report(report: dict[str, Any]) -> None:
    """The verdict, what was left out, scores per task with ranks, and the pairs."""
    console.print(f"[bold]{report['verdict']}[/bold]")
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    cells = report["suite"]["cell_types"]
    table = Table("task", *cells, title="score per task (rank)")
    for task, scores in report["scores"].items():
        table.add_row(task, *(_score_text(scores.get(c)) for c in cells))
    comparison = report["comparison"]
    if comparison is not None:
        avg = comparison["average_ranks"]
        table.add_row(
            "[bold]average rank[/bold]",
            *(f"{avg[c]:.2f}" if avg.get(c) is not None else "-" for c in cells),
        )
    console.print(table)
    tests = {(p["a"], p["b"]): p for p in (comparison or {}).get("pairs", [])}
    pairs = Table("A", "B", "A wins/ties/losses", "Wilcoxon p", "Holm p", "result")
    for w in report["win_tie_loss"]:
        test = tests.get((w["a"], w["b"]))
        result = "not tested"
        p = adjusted = "-"
        if test is not None:
            p, adjusted = f"{test['p_value']:.3g}", f"{test['p_adjusted']:.3g}"
            result = "not separated"
            if test["separated"]:
                result = f"{test['better']} better"
            elif test["reject"]:
                result = "not separated (Friedman gate)"
        pairs.add_row(w["a"], w["b"], f"{w['wins']}/{w['ties']}/{w['losses']}", p, adjusted, result)
    if report["win_tie_loss"]:
        console.print(pairs)
