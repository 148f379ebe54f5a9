"""Client commands about trained models a study kept (``cellsearch model ...``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.service.cli.app import ApiUrl, api, app
from cellsearch.service.cli.client import fail
from cellsearch.service.cli.text import echo_json, echo_lines, num, table

model_app = typer.Typer(
    help="Trained models a study kept: the best of each cell type, and re-evaluation runs.",
    no_args_is_help=True,
)
app.add_typer(model_app, name="model")


@model_app.command("list")
def model_list(
    ctx: typer.Context,
    name: str,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """List the models a study kept (a cell type's best trials, and re-evaluation runs)."""
    models = api(ctx, api_url).models.list(name)
    if json_:
        echo_json([m.raw for m in models])
        return
    if not models:
        echo_lines([f"{name} kept no model yet: none of its trials has completed"])
        return
    rows = [
        [m.cell_type or "-", str(m.trial_number), num(m.value, 5),
         "re-evaluation" if m.reevaluation else "search", f"{m.size_bytes / 1024:.0f} KiB"]
        for m in models
    ]  # fmt: skip
    echo_lines(table(["cell", "trial", "value", "kind", "size"], rows))


@model_app.command("download")
def model_download(
    ctx: typer.Context,
    name: str,
    cell: Annotated[str | None, typer.Option(help="The cell type whose best model to get.")] = None,
    trial: Annotated[int | None, typer.Option(help="The trial whose model to get.")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file (default: the model's name).")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Download one model file (safetensors); `cellsearch.load_model(FILE)` loads it."""
    if (cell is None) == (trial is None):
        fail("give --cell (a cell type's best model) or --trial N, not both")
    saved = api(ctx, api_url).models.download(name, cell=cell, trial=trial, path=output)
    typer.echo(f"saved {saved} ({saved.stat().st_size} bytes)")
