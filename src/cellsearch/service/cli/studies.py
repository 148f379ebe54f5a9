"""Client commands about studies: they talk to the REST API at ``--api-url``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.service.cli import render
from cellsearch.service.cli.app import ApiUrl, api, app
from cellsearch.service.cli.client import load_spec


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="Study spec, YAML or JSON.", exists=True)],
    wait: Annotated[bool, typer.Option(help="Follow progress until the study ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Submit a study spec to the API."""
    client = api(api_url)
    study = client.submit(load_spec(spec_file))
    typer.echo(f"submitted {study['name']}: {study['n_trials']} trials")
    if wait:
        render.follow(client, study["name"])


@app.command("list")
def list_(api_url: ApiUrl = None) -> None:
    """List studies with their progress."""
    render.print_studies(api(api_url).studies())


@app.command()
def show(name: str, api_url: ApiUrl = None) -> None:
    """Show a study: status, counts by state and cell type, best trial."""
    render.print_study(api(api_url).study(name))


@app.command()
def report(name: str, api_url: ApiUrl = None) -> None:
    """Print the comparison report of a study's cell types."""
    render.print_report(api(api_url).report(name))


@app.command()
def pause(name: str, api_url: ApiUrl = None) -> None:
    """Pause a study (running trials stop after their epoch and are requeued)."""
    render.print_study(api(api_url).action(name, "pause"))


@app.command()
def resume(name: str, api_url: ApiUrl = None) -> None:
    """Resume a paused study."""
    render.print_study(api(api_url).action(name, "resume"))


@app.command()
def cancel(name: str, api_url: ApiUrl = None) -> None:
    """Cancel a study for good."""
    render.print_study(api(api_url).action(name, "cancel"))


@app.command()
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Delete a study and all its trials."""
    if not yes:
        typer.confirm(f"delete study {name!r} and all its trials?", abort=True)
    api(api_url).delete(name)
    typer.echo(f"deleted {name}")
