"""Client commands about uploaded data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cellsearch.service.cli import render
from cellsearch.service.cli.app import ApiUrl, api, app

dataset_app = typer.Typer(help="Upload, list and delete data sets (NPZ or long-format CSV).")
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("upload")
def dataset_upload(
    path: Annotated[Path, typer.Argument(help="An .npz or .csv file.", exists=True)],
    name: Annotated[str, typer.Option(help="A unique name.")],
    kind: Annotated[
        str | None, typer.Option(help="classification, regression, per_step or forecasting.")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Validate and store a data set; a study refers to it by the printed id."""
    record = api(api_url).upload_dataset(path, name, kind)
    typer.echo(f"uploaded {record['name']}: id {record['id']} ({record['kind']}, "
               f"{record['n_sequences']} sequences)")  # fmt: skip


@dataset_app.command("list")
def dataset_list(api_url: ApiUrl = None) -> None:
    """List the uploaded data sets."""
    render.print_datasets(api(api_url).datasets())


@dataset_app.command("delete")
def dataset_delete(dataset_id: str, api_url: ApiUrl = None) -> None:
    """Delete a data set that no study uses."""
    api(api_url).delete_dataset(dataset_id)
    typer.echo(f"deleted {dataset_id}")
