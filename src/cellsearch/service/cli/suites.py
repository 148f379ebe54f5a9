"""Client commands about suites (``cellsearch suite ...``): they talk to the REST API."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.service.cli import suite_render
from cellsearch.service.cli.app import ApiUrl, Yes, api, app, confirm
from cellsearch.service.cli.client import load_spec
from cellsearch.service.cli.text import echo_lines

suite_app = typer.Typer(
    help="Suites: one study per task from one template; cell types ranked across tasks.",
    no_args_is_help=True,
)
app.add_typer(suite_app, name="suite")


@suite_app.command("submit")
def submit(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="Suite spec, YAML or JSON.", exists=True)],
    wait: Annotated[bool, typer.Option(help="Follow each study until all have ended.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Submit a suite spec: one study per task, created together or not at all."""
    client = api(ctx, api_url)
    suite = client.suites.submit(load_spec(spec_file))
    typer.echo(
        f"submitted suite {suite.name}: {suite.n_tasks} studies, {suite.n_trials} trials in all"
    )
    if wait:
        suite_render.follow_suite(client, suite.name)
        typer.echo(f"report: cellsearch suite report {suite.name}")


@suite_app.command("list")
def list_(ctx: typer.Context, api_url: ApiUrl = None) -> None:
    """List suites with the progress of their studies."""
    suite_render.print_suites([s.raw for s in api(ctx, api_url).suites.list()])


@suite_app.command("show")
def show(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Show a suite: status and progress of each of its studies."""
    suite_render.print_suite(api(ctx, api_url).suites.get(name).raw)


@suite_app.command("report")
def report(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Print the cross-task ranking of cell types over the suite's finished studies."""
    echo_lines(suite_render.suite_report_lines(api(ctx, api_url).suites.report(name)))


@suite_app.command("pause")
def pause(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Pause every running study of the suite."""
    suite_render.print_suite(api(ctx, api_url).suites.pause(name).raw)


@suite_app.command("resume")
def resume(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Resume every paused study of the suite."""
    suite_render.print_suite(api(ctx, api_url).suites.resume(name).raw)


@suite_app.command("cancel")
def cancel(ctx: typer.Context, name: str, api_url: ApiUrl = None) -> None:
    """Cancel every study of the suite that has not ended."""
    suite_render.print_suite(api(ctx, api_url).suites.cancel(name).raw)


@suite_app.command("delete")
def delete(
    ctx: typer.Context,
    name: str,
    yes: Yes = False,
    api_url: ApiUrl = None,
) -> None:
    """Delete a suite and every study it made, with their trials."""
    confirm(yes, f"delete suite {name!r}, its studies and all their trials?")
    api(ctx, api_url).suites.delete(name)
    typer.echo(f"deleted suite {name}")
