"""The ``cellsearch`` command line (typer).

Server-side commands (``serve``, ``worker``, ``migrate``, ``dashboard``) talk to the
database; client commands (``submit``, ``list``, ``show``, ``report``...) talk to the
REST API at ``--api-url`` (``CELLSEARCH_API_URL``).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cellsearch.service import client
from cellsearch.service.settings import Settings

app = typer.Typer(
    name="cellsearch",
    help="Hyperparameter search in which the recurrent cell type is a hyperparameter.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="SQLAlchemy URL [CELLSEARCH_DATABASE_URL].")
]
ApiUrl = Annotated[str | None, typer.Option("--api-url", help="API root [CELLSEARCH_API_URL].")]


def _settings(**overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**values)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create Optuna's tables and apply the service's migrations."""
    from cellsearch.service.migrate import upgrade

    settings = _settings(database_url=database_url)
    upgrade(settings)
    typer.echo(f"database ready: {_redact(settings.database_url)}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [CELLSEARCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [CELLSEARCH_PORT].")] = None,
    database_url: DatabaseUrl = None,
    workers: Annotated[
        int | None, typer.Option(help="Local workers to start [CELLSEARCH_LOCAL_WORKERS].")
    ] = None,
    device: Annotated[str, typer.Option(help="Device of the local workers.")] = "auto",
) -> None:
    """Run the API, migrating first, with local workers beside it."""
    import uvicorn

    from cellsearch.service.api.app import create_app
    from cellsearch.service.migrate import upgrade
    from cellsearch.service.processes import spawn_workers, stop_workers

    _logging()
    settings = _settings(host=host, port=port, database_url=database_url, local_workers=workers)
    os.environ["CELLSEARCH_DATABASE_URL"] = settings.database_url
    upgrade(settings)
    n = settings.local_workers
    procs = spawn_workers(settings, [(device, {})] * n)  # they share the CPUs (search/cpu.py)
    typer.echo(
        f"cellsearch API on http://{settings.host}:{settings.port} (docs at /docs), "
        f"{n} local worker(s), database {_redact(settings.database_url)}"
    )
    app = create_app()
    serve_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        # uvicorn re-raises SIGTERM after its graceful shutdown, so code after
        # uvicorn.run() would never run: the workers are stopped here instead.
        try:
            async with serve_lifespan(a) as state:
                yield state
        finally:
            stop_workers(procs, timeout=settings.grace_period)

    app.router.lifespan_context = lifespan
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    finally:
        stop_workers(procs, timeout=settings.grace_period)


@app.command()
def worker(
    database_url: DatabaseUrl = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    gpus: Annotated[
        str | None, typer.Option(help="Start one process per GPU slot, e.g. 0,1.")
    ] = None,
    per_gpu: Annotated[int, typer.Option(help="Processes per GPU with --gpus.")] = 1,
    max_trials: Annotated[
        int | None, typer.Option(help="Exit after this many trials (default: run until stopped).")
    ] = None,
) -> None:
    """Run trials of runnable studies until stopped (SIGTERM finishes the epoch, requeues)."""
    _logging()
    settings = _settings(database_url=database_url)
    if gpus is not None:
        _supervise_gpu_workers(settings, gpus, per_gpu)
        return
    from cellsearch.service.runner import build_worker

    try:
        w = build_worker(settings, device)
    except Exception as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    signal.signal(signal.SIGINT, lambda *_: w.stop())
    ran = w.run(max_trials=max_trials)
    typer.echo(f"worker {w.info.worker_id} exiting after {ran} trial(s)")


def _supervise_gpu_workers(settings: Settings, gpus: str, per_gpu: int) -> None:
    from cellsearch.service.processes import gpu_slots, spawn_workers, stop_workers

    try:
        slots = gpu_slots(gpus, per_gpu)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    procs = spawn_workers(settings, slots)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stopping and any(p.poll() is None for p in procs):
        signal.sigtimedwait([signal.SIGTERM, signal.SIGINT], 1.0)
    stop_workers(procs, timeout=settings.grace_period)


@app.command()
def dashboard(
    database_url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
) -> None:
    """Open optuna-dashboard on the same database (every study and trial)."""
    import optuna_dashboard

    from cellsearch.service.db import optuna_storage

    settings = _settings(database_url=database_url)
    typer.echo(f"optuna-dashboard on http://{host}:{port}")
    optuna_dashboard.run_server(optuna_storage(settings), host=host, port=port)


@app.command()
def submit(
    spec_file: Annotated[Path, typer.Argument(help="Study spec, YAML or JSON.", exists=True)],
    wait: Annotated[bool, typer.Option(help="Follow progress until the study ends.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Submit a study spec to the API."""
    api = client.Api(_settings(api_url=api_url).api_url)
    study = api.submit(client.load_spec(spec_file))
    typer.echo(f"submitted {study['name']}: {study['n_trials']} trials")
    if wait:
        client.follow(api, study["name"])


@app.command("list")
def list_(api_url: ApiUrl = None) -> None:
    """List studies with their progress."""
    client.print_studies(client.Api(_settings(api_url=api_url).api_url).studies())


@app.command()
def show(name: str, api_url: ApiUrl = None) -> None:
    """Show a study: status, counts by state and cell type, best trial."""
    client.print_study(client.Api(_settings(api_url=api_url).api_url).study(name))


@app.command()
def report(name: str, api_url: ApiUrl = None) -> None:
    """Print the comparison report of a study's cell types."""
    client.print_report(client.Api(_settings(api_url=api_url).api_url).report(name))


@app.command()
def pause(name: str, api_url: ApiUrl = None) -> None:
    """Pause a study (running trials stop after their epoch and are requeued)."""
    client.print_study(client.Api(_settings(api_url=api_url).api_url).action(name, "pause"))


@app.command()
def resume(name: str, api_url: ApiUrl = None) -> None:
    """Resume a paused study."""
    client.print_study(client.Api(_settings(api_url=api_url).api_url).action(name, "resume"))


@app.command()
def cancel(name: str, api_url: ApiUrl = None) -> None:
    """Cancel a study for good."""
    client.print_study(client.Api(_settings(api_url=api_url).api_url).action(name, "cancel"))


@app.command()
def delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Delete a study and all its trials."""
    if not yes:
        typer.confirm(f"delete study {name!r} and all its trials?", abort=True)
    client.Api(_settings(api_url=api_url).api_url).delete(name)
    typer.echo(f"deleted {name}")


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
    record = client.Api(_settings(api_url=api_url).api_url).upload_dataset(path, name, kind)
    typer.echo(f"uploaded {record['name']}: id {record['id']} ({record['kind']}, "
               f"{record['n_sequences']} sequences)")  # fmt: skip


@dataset_app.command("list")
def dataset_list(api_url: ApiUrl = None) -> None:
    """List the uploaded data sets."""
    client.print_datasets(client.Api(_settings(api_url=api_url).api_url).datasets())


@dataset_app.command("delete")
def dataset_delete(dataset_id: str, api_url: ApiUrl = None) -> None:
    """Delete a data set that no study uses."""
    client.Api(_settings(api_url=api_url).api_url).delete_dataset(dataset_id)
    typer.echo(f"deleted {dataset_id}")


def _redact(url: str) -> str:
    """Hide a password in a database URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
