"""Client commands about what can be searched: cell types and task kinds."""

from __future__ import annotations

from typing import Annotated

import typer

from cellsearch.service.cli import render
from cellsearch.service.cli.app import ApiUrl, api, app
from cellsearch.service.cli.text import echo_json

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.command()
def cells(ctx: typer.Context, json_: Json = False, api_url: ApiUrl = None) -> None:
    """List the recurrent cell types a spec can search (space.cell_type)."""
    found = api(ctx, api_url).cells()
    echo_json([c.raw for c in found]) if json_ else render.print_cells(found)


@app.command()
def tasks(ctx: typer.Context, json_: Json = False, api_url: ApiUrl = None) -> None:
    """List the task kinds a spec can name (task.kind), with their trivial baselines."""
    found = api(ctx, api_url).tasks()
    echo_json([t.raw for t in found]) if json_ else render.print_tasks(found)
