"""Server-side commands: they talk to the database (migrate, serve, worker, dashboard)."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from cellsearch.service.cli.app import DatabaseUrl, app, load_settings, redact, setup_logging
from cellsearch.service.settings import Settings


def missing_sqlite_file(database_url: str) -> Path | None:
    """The file of a SQLite URL when it does not exist (opening it would create it)."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = url.database
    if url.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:") or url.query.get("mode") == "memory":
        return None  # a URI filename or an in-memory database: nothing to check here
    path = Path(name)
    return None if path.exists() else path


def refuse_new_database(settings: Settings, command: str) -> None:
    """Exit with status 2, naming the database, when ``command`` would create a new,
    empty SQLite file instead of using the service's database."""
    path = missing_sqlite_file(settings.database_url)
    if path is None:
        return
    typer.secho(
        f"error: no database at {path.resolve()} ({redact(settings.database_url)}); "
        f"`cellsearch {command}` does not create one. Run `cellsearch migrate` or "
        "`cellsearch serve` (which migrates) first, or point --database-url "
        "(CELLSEARCH_DATABASE_URL) at the service's database.",
        err=True,
        fg="red",
    )
    raise typer.Exit(2)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create Optuna's tables and apply the service's migrations."""
    from cellsearch.service.store.migrate import upgrade

    settings = load_settings(database_url=database_url)
    upgrade(settings)
    typer.echo(f"database ready: {redact(settings.database_url)}")


class QuietReads(logging.Filter):
    """Drops access-log lines of successful GETs (a watching CLI polls every second), so
    that the lines of finished trials, errors and changes stand out."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple) and len(args) == 5
        ):  # uvicorn: client, method, path, http, status
            method, status = args[1], args[4]
            return not (method == "GET" and isinstance(status, int) and status < 400)
        return True


def local_workers(settings: Settings) -> int:
    """How many workers ``serve`` starts: the setting, else one per usable CPU (at most 8)."""
    from cellsearch.search.worker.cpu import cgroup_cpu_quota, default_local_workers, usable_cpus

    if settings.local_workers is not None:
        return settings.local_workers
    return default_local_workers(usable_cpus(cgroup_cpu_quota()))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [CELLSEARCH_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [CELLSEARCH_PORT].")] = None,
    database_url: DatabaseUrl = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local workers to start [CELLSEARCH_LOCAL_WORKERS]; default: one per usable "
            "CPU, at most 8."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="Device of the local workers.")] = "auto",
) -> None:
    """Run the API, migrating first, with local workers beside it."""
    import uvicorn

    from cellsearch.service.access.keys import session_secret, startup_line
    from cellsearch.service.api.app import create_app
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.migrate import upgrade
    from cellsearch.service.workers.processes import spawn_workers, stop_workers

    setup_logging()
    settings = load_settings(host=host, port=port, database_url=database_url, local_workers=workers)
    os.environ["CELLSEARCH_DATABASE_URL"] = settings.database_url
    os.environ["CELLSEARCH_HOST"] = settings.host  # the app decides on keys by the bind address
    upgrade(settings)
    try:
        access = startup_line(settings.auth, settings.host, engine_for(settings))
    except PermissionError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(2) from None
    secret = settings.session_secret
    session_secret(engine_for(settings), secret.get_secret_value() if secret else None)
    n = local_workers(settings)
    procs = spawn_workers(settings, [(device, {})] * n)  # one torch thread each (worker/cpu.py)
    typer.echo(
        f"cellsearch API on http://{settings.host}:{settings.port} (docs at /docs), "
        f"{n} local worker(s), database {redact(settings.database_url)}\n{access}"
    )
    if n == 0:
        typer.echo(
            "No local workers (CELLSEARCH_LOCAL_WORKERS=0): studies wait for workers started "
            "elsewhere on this database (`cellsearch worker --database-url ...`)."
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
    logging.getLogger("uvicorn.access").addFilter(QuietReads())
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
    setup_logging()
    settings = load_settings(database_url=database_url)
    refuse_new_database(settings, "worker")
    if gpus is not None:
        _supervise_gpu_workers(settings, gpus, per_gpu)
        return
    from cellsearch.service.workers.runner import build_worker

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
    from cellsearch.service.workers.processes import gpu_slots, spawn_workers, stop_workers

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
    host: Annotated[
        str, typer.Option(help="Bind address (loopback: optuna-dashboard has no access control).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
) -> None:
    """Open optuna-dashboard on the same database (every study and trial, and each study's
    kept models).

    optuna-dashboard has no access control: anyone who reaches it can read, and change,
    every study. It listens on loopback by default; put it behind an authenticating
    proxy before binding it anywhere else (docs/cluster.md).
    """
    import optuna_dashboard

    from cellsearch.service.access.keys import is_loopback
    from cellsearch.service.artifacts.operations import store_for
    from cellsearch.service.store.db import optuna_storage

    settings = load_settings(database_url=database_url)
    refuse_new_database(settings, "dashboard")
    if not is_loopback(host):
        typer.secho(
            f"warning: optuna-dashboard has no access control and {host} is not a loopback "
            "address: anyone who can reach this port can read and change every study. Put it "
            "behind an authenticating proxy (docs/cluster.md).",
            err=True,
            fg="yellow",
        )
    typer.echo(f"optuna-dashboard on http://{host}:{port}")
    optuna_dashboard.run_server(
        optuna_storage(settings),
        host=host,
        port=port,
        artifact_store=store_for(settings),  # each study's kept models, on its page
    )
