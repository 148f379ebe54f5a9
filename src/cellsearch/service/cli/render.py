"""What the CLI prints: tables, the progress of a study, the report (rich)."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cellsearch.service.cli.client import Api

console = Console()
FINAL_STATUSES = ("completed", "cancelled")


def follow(api: Api, name: str, poll: float = 1.0) -> dict[str, Any]:
    """Show a progress bar until the study is completed or cancelled."""
    study = api.study(name)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[detail]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task(name, total=study["n_trials"], detail="")
        while True:
            c = study["counts"]
            best = study["best_trial"]
            detail = f"running {c['running']}  pruned {c['pruned']}  failed {c['failed']}" + (
                f"  best {best['value']:.4g} ({best['cell_type']})" if best else ""
            )
            progress.update(bar, completed=c["finished"], detail=detail)
            if study["status"] in FINAL_STATUSES:
                break
            time.sleep(poll)
            study = api.study(name)
    print_study(study)
    return study


def print_studies(studies: list[dict[str, Any]]) -> None:
    table = Table("name", "status", "task", "cells", "finished", "running", "created")
    for s in studies:
        c = s["counts"]
        progress = f"{c['finished']}/{s['n_trials']}"
        cells = ", ".join(s["cell_types"])
        table.add_row(
            s["name"],
            s["status"],
            s["task"],
            cells,
            progress,
            str(c["running"]),
            s["created_at"][:19],
        )
    console.print(table if studies else "no studies yet: `cellsearch submit SPEC.yaml`")


def print_study(study: dict[str, Any]) -> None:
    c = study["counts"]
    console.print(f"[bold]{study['name']}[/bold]  {study['status']}  task {study['task']}  "
                  f"{c['finished']}/{study['n_trials']} finished")  # fmt: skip
    table = Table("complete", "pruned", "failed", "running", "waiting", "requeued")
    table.add_row(
        *(str(c[k]) for k in ("complete", "pruned", "failed", "running", "waiting", "requeued"))
    )
    console.print(table)
    if c["by_cell"]:
        console.print(
            "finished per cell: " + ", ".join(f"{k} {v}" for k, v in c["by_cell"].items())
        )
    best = study.get("best_trial")
    if best:
        params = json.dumps(best["params"], default=str)
        console.print(f"best: trial {best['number']} value {best['value']:.5g} "
                      f"({best['cell_type']}, {best['param_count']} params) {params}")  # fmt: skip


def print_datasets(datasets: list[dict[str, Any]]) -> None:
    table = Table("id", "name", "kind", "sequences", "max length", "features", "classes", "bytes")
    for d in datasets:
        table.add_row(d["id"], d["name"], d["kind"], str(d["n_sequences"]), str(d["max_length"]),
                      str(d["n_features"]), _num(d["n_classes"]), str(d["size_bytes"]))  # fmt: skip
    console.print(table if datasets else "no datasets yet: `cellsearch dataset upload FILE`")


def print_report(report: dict[str, Any]) -> None:
    """The verdict, warnings and one row per cell type."""
    console.print(f"[bold]{report['verdict']}[/bold]")
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {warning}")
    table = Table("cell", "completed", "best", "95% CI", "median", "expected best-of-n",
                  "diverged", "pruned", "params", "s/epoch")  # fmt: skip
    for cell in report["cells"]:
        best = cell.get("best") or {}
        evp = cell.get("expected_best_at_budget") or {}
        table.add_row(
            cell["cell_type"],
            str(cell["n_completed"]),
            _num(best.get("value")),
            f"[{_num(best.get('ci_low'))}, {_num(best.get('ci_high'))}]",
            _num(cell.get("median")),
            f"{_num(evp.get('mean'))} (n={evp.get('n', '-')})",
            _num(cell.get("divergence_rate")),
            _num(cell.get("pruning_rate")),
            _num(best.get("param_count")),
            _num(best.get("seconds_per_epoch")),
        )
    console.print(table)


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
