"""Building a worker process from settings."""

from __future__ import annotations

import torch

from cellsearch.search.errors import WorkerError
from cellsearch.search.trainer import warm_up
from cellsearch.search.worker import Worker, resolve_device
from cellsearch.service.db import engine_for, optuna_storage
from cellsearch.service.migrate import current_revision, head_revision
from cellsearch.service.queue import SqlStudyQueue
from cellsearch.service.settings import Settings


def build_worker(settings: Settings, device: str) -> Worker:
    """A worker on the settings' database.

    Raises:
        WorkerError: the device is unusable or the database is not migrated.
    """
    resolved = resolve_device(device)
    engine = engine_for(settings)
    if current_revision(engine) != head_revision():
        raise WorkerError(
            "the database is not migrated to this version: run `cellsearch migrate` "
            "(or start `cellsearch serve`, which migrates) first"
        )
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    warm_up(resolved)  # one-time costs at start-up, not in the first trial's timing
    return Worker(
        optuna_storage(settings),
        SqlStudyQueue(engine, grace_period=settings.grace_period),
        device=resolved,
        poll_interval=settings.poll_interval,
    )
