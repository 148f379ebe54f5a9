"""Client commands about uploaded data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.client import NotFound
from cellsearch.service.cli import render
from cellsearch.service.cli.app import ApiUrl, api, app
from cellsearch.service.cli.client import fail
from cellsearch.service.cli.text import echo_json

dataset_app = typer.Typer(help="Upload, list and delete data sets (NPZ or long-format CSV).")
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("upload")
def dataset_upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="An .npz or .csv file.", exists=True)],
    name: Annotated[str, typer.Option(help="A unique name.")],
    kind: Annotated[
        str | None, typer.Option(help="classification, regression, per_step or forecasting.")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Validate and store a data set; a study refers to it by the printed id."""
    record = api(ctx, api_url).datasets.upload(path, name=name, kind=kind)
    typer.echo(f"uploaded {record.name}: id {record.id} ({record.kind}, "
               f"{record.n_sequences} sequences)")  # fmt: skip


@dataset_app.command("list")
def dataset_list(
    ctx: typer.Context,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """List the uploaded data sets."""
    datasets = api(ctx, api_url).datasets.list()
    echo_json([d.raw for d in datasets]) if json_ else render.print_datasets(datasets)


@dataset_app.command("delete")
def dataset_delete(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME_OR_ID", help="The data set's name or id.")],
    api_url: ApiUrl = None,
) -> None:
    """Delete a data set that no study uses."""
    client = api(ctx, api_url)
    try:
        found = client.datasets.find(ref)
    except NotFound:
        fail(f"no data set has the id or name {ref!r} (`cellsearch dataset list`)")
    client.datasets.delete(found)
    typer.echo(f"deleted data set {found.name} (id {found.id})")
