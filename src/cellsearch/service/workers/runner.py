"""Building a worker process from settings."""

from __future__ import annotations

import logging
import time

import optuna
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from cellsearch.search.errors import WorkerError
from cellsearch.search.trial.optimizers import warm_up
from cellsearch.search.worker.artifacts import TrialArtifacts
from cellsearch.search.worker.cpu import fixed_threads
from cellsearch.search.worker.device import resolve_device
from cellsearch.search.worker.loop import Worker
from cellsearch.search.worker.protocol import Backend, WorkSignal
from cellsearch.service.artifacts.index import SqlArtifactIndex
from cellsearch.service.artifacts.operations import store_for, sweep
from cellsearch.service.datasets.operations import dataset_content
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.migrate import current_revision, head_revision
from cellsearch.service.workers.ledger import SqlStudyLedger
from cellsearch.service.workers.roster import SqlWorkerRegistry
from cellsearch.service.workers.wakeup import work_signal

log = logging.getLogger(__name__)


def sql_backend(
    engine: Engine, *, grace_period: float, signal: WorkSignal | None = None
) -> Backend:
    """A worker's backend over the service's tables on ``engine`` (``signal``: how it
    hears of new work; None: it polls)."""
    return Backend(
        ledger=SqlStudyLedger(engine, grace_period=grace_period),
        registry=SqlWorkerRegistry(engine, grace_period=grace_period),
        datasets=lambda dataset_id: dataset_content(engine=engine, dataset_id=dataset_id),
        signal=signal,
    )


def build_worker(settings: Settings, device: str) -> Worker:
    """A worker on the settings' database.

    The worker has one engine, which its Optuna storage shares
    (:func:`~cellsearch.service.store.db.worker_engine`), and, on PostgreSQL, waits for
    work on LISTEN/NOTIFY (:mod:`.wakeup`). A database that cannot be reached yet, or is not
    yet migrated (a cluster whose database and migration step start beside the workers), is
    waited for, for up to ``settings.startup_timeout`` seconds.

    Raises:
        WorkerError: the device is unusable, or the database was still unreachable or
            not migrated when the start-up timeout ran out.
    """
    resolved = resolve_device(device)
    storage = _wait_for_database(settings)
    engine = engine_for(settings, worker=True)
    signal = work_signal(settings, engine)
    worker = Worker(
        storage,
        sql_backend(engine, grace_period=settings.grace_period, signal=signal),
        device=resolved,
        poll_interval=settings.poll_interval,
        idle_poll_max=settings.idle_poll_max,
        torch_threads=fixed_threads(settings.torch_threads),
        keeper=trial_artifacts(settings, engine, storage),
    )
    warm_up(resolved)  # one-time costs at start-up, not in the first trial's timing
    return worker


def trial_artifacts(
    settings: Settings, engine: Engine, storage: optuna.storages.BaseStorage
) -> TrialArtifacts:
    """The worker's artifact keeper: the settings' store and the service's index (the store
    swept of the artifacts of deleted studies first)."""
    store = store_for(settings)
    sweep(engine=engine, store=store)
    return TrialArtifacts(
        store,
        SqlArtifactIndex(engine),
        storage,
        checkpoint_every_s=settings.checkpoint_every_s,
        keep_top_k=settings.keep_top_k,
        max_study_bytes=settings.max_artifact_bytes,
    )


def _wait_for_database(settings: Settings) -> optuna.storages.RDBStorage:
    deadline = time.monotonic() + settings.startup_timeout
    delay = 0.5
    while True:
        try:
            problem = _database_problem(settings)
        except (OperationalError, optuna.exceptions.StorageInternalError) as exc:
            problem = f"the database is unreachable ({_first_line(exc)})"
        if problem is None:
            return optuna_storage(settings, worker=True)
        left = deadline - time.monotonic()
        if left <= 0:
            raise WorkerError(f"{problem}; gave up after {settings.startup_timeout:g} s")
        log.warning("%s; retrying in %.1f s", problem, min(delay, left))
        time.sleep(min(delay, left))
        delay = min(delay * 2, 5.0)


def _database_problem(settings: Settings) -> str | None:
    revision, head = current_revision(engine_for(settings, worker=True)), head_revision()
    if revision != head:
        return (
            f"the database is not migrated to this version (at {revision or 'nothing'}, "
            f"needs {head}): run `cellsearch migrate` (or start `cellsearch serve`, which "
            "migrates)"
        )
    optuna_storage(settings, worker=True)  # Optuna checks its schema when the storage is made
    return None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
