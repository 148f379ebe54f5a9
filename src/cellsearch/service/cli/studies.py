"""Client commands about studies: they talk to the REST API at ``--api-url``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.client import Client
from cellsearch.service.cli import progress, render
from cellsearch.service.cli.app import ApiUrl, Yes, api, app, confirm
from cellsearch.service.cli.client import load_spec
from cellsearch.service.cli.report_text import report_lines
from cellsearch.service.cli.text import echo_json, echo_lines

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
STATE_NAMES = ("running", "waiting", "complete", "pruned", "fail")


def _wait(client: Client, name: str) -> None:
    """Follow a study to its end; exit 3 if it was cancelled, 4 if nothing completed."""
    try:
        study = progress.follow(client, name)
    except KeyboardInterrupt:
        typer.echo(f"\nstopped watching; {name} goes on (`cellsearch watch {name}`)", err=True)
        raise typer.Exit(130) from None
    render.print_study(study)
    message = progress.ending(study)
    if message:
        typer.echo(message, err=True)
    else:
        typer.echo(f"report: cellsearch report {name}")
    raise typer.Exit(progress.exit_code(study))


@app.command()
def submit(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="Study spec, YAML or JSON.", exists=True)],
    wait: Annotated[
        bool,
        typer.Option(
            help="Follow progress until the study ends; exit 3 if it is cancelled, 4 if no "
            "trial completed. Rides out restarts of the API."
        ),
    ] = False,
    api_url: ApiUrl = None,
) -> None:
    """Submit a study spec to the API."""
    client = api(ctx, api_url)
    study = client.submit(load_spec(spec_file))
    typer.echo(f"submitted {study.name}: {study.n_trials} trials ({study.status})")
    if wait:
        _wait(client, study.name)


@app.command()
def watch(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Follow a study's progress until it ends (as submit --wait; same exit statuses)."""
    _wait(api(ctx, api_url), name)


@app.command()
def validate(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="Study spec, YAML or JSON.", exists=True)],
    json_: Json = False,
    api_url: ApiUrl = None,
) -> None:
    """Check a spec against the server's limits and data sets without submitting it.

    Exits 1 with each invalid field named, or when a study already has the name.
    """
    result = api(ctx, api_url).validate(load_spec(spec_file))
    if json_:
        echo_json(result.raw)
    else:
        render.print_validation(result)
    if not result.name_available:
        raise typer.Exit(1)


@app.command()
def trials(
    ctx: typer.Context,
    name: str,
    state: Annotated[
        list[str] | None,
        typer.Option(help=f"Only trials in this state ({', '.join(STATE_NAMES)}); repeatable."),
    ] = None,
    cell: Annotated[str | None, typer.Option(help="Only trials of this cell type.")] = None,
    json_: Json = False,
    api_url: ApiUrl = None,
) -> None:
    """List a study's trials: cell, state, value, epochs, seconds, hyperparameters."""
    bad = [s for s in state or [] if s not in STATE_NAMES]
    if bad:
        raise typer.BadParameter(f"{', '.join(bad)}: states are {', '.join(STATE_NAMES)}",
                                 param_hint="--state")  # fmt: skip
    client = api(ctx, api_url)
    found = client.trials(name, state=state, cell_type=cell)
    if json_:
        echo_json(found.raw)
        return
    render.print_trials(found, client.get(name).objective or "value")


@app.command("list")
def list_(ctx: typer.Context, json_: Json = False, api_url: ApiUrl = None) -> None:
    """List studies with their progress (queued: waiting behind an older study)."""
    studies = api(ctx, api_url).list()
    echo_json([s.raw for s in studies]) if json_ else render.print_studies(studies)


@app.command()
def show(ctx: typer.Context, name: str, json_: Json = False, api_url: ApiUrl = None) -> None:
    """Show a study: status, counts by state and cell type, best trial."""
    study = api(ctx, api_url).get(name)
    echo_json(study.raw) if json_ else render.print_study(study)


@app.command()
def report(ctx: typer.Context, name: str, json_: Json = False, api_url: ApiUrl = None) -> None:
    """Print the comparison report of a study's cell types (80 columns), and how to
    download each cell type's best kept model."""
    client = api(ctx, api_url)
    found = client.report(name)
    if json_:
        echo_json(found.raw)
        return
    echo_lines(report_lines(found, client.models.list(name)))


@app.command()
def pause(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Pause a study (running trials stop after their epoch and are requeued)."""
    render.print_study(api(ctx, api_url).pause(name))


@app.command()
def resume(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Resume a paused study."""
    render.print_study(api(ctx, api_url).resume(name))


@app.command()
def cancel(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Cancel a study for good."""
    render.print_study(api(ctx, api_url).cancel(name))


@app.command()
def delete(
    ctx: typer.Context,
    name: str,
    yes: Yes = False,
    api_url: ApiUrl = None,
) -> None:
    """Delete a study and all its trials."""
    confirm(yes, f"delete study {name!r} and all its trials?")
    api(ctx, api_url).delete(name)
    typer.echo(f"deleted {name}")
