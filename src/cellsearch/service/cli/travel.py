"""Client commands by which a study travels: ``export`` (one archive) and ``import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.service.cli.app import ApiUrl, api, app
from cellsearch.service.cli.text import echo_json, echo_lines


@app.command()
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The study to export.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The archive (default: NAME.cellsearch.zip)."),
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Save a study as one archive: spec, trials, report, data set, kept models, MANIFEST.

    optuna-dashboard opens the archive's optuna.sqlite3 as it is (unzip it first).
    """
    saved = api(ctx, api_url).export(name, output)
    typer.echo(f"exported {name} to {saved} ({saved.stat().st_size} bytes)")


@app.command("import")
def import_(
    ctx: typer.Context,
    archive: Annotated[
        Path, typer.Argument(help="A study archive (cellsearch export).", exists=True)
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Import under this name (a clash is an error).")
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Recreate a study from its archive on this server; a study that ran arrives paused."""
    made = api(ctx, api_url).import_(archive, name=name)
    if json_:
        echo_json(made.raw)
        return
    lines = [
        f"imported {made.name}: {made.trials} trials, {made.models} kept models ({made.status})"
    ]
    lines += [f"  {note}" for note in made.notes]
    if made.status == "paused":
        lines.append(f"resume it with: cellsearch resume {made.name}")
    echo_lines(lines)
