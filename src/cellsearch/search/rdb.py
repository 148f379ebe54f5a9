"""Batched writes to Optuna's RDB storage for the worker's hot path.

Optuna commits one transaction per user attribute (``Trial.set_user_attr``) and another
for each heartbeat, and on its PostgreSQL path looks every attribute up before writing
it. A trial records about twenty attributes, so on a short trial those round trips were
most of the worker's cost. :func:`record_attrs` writes a trial's attributes (and, when
asked, its heartbeat) as one multi-row ``INSERT ... ON CONFLICT DO UPDATE`` in one
transaction on Optuna's engine, with Optuna's own table definitions and its own check
that the trial is still running. Optuna has no public batch call; anything other than
an ``RDBStorage`` on SQLite or PostgreSQL (or an Optuna whose internals moved) takes the
public per-attribute path.
"""

from __future__ import annotations

import json
from typing import Any

import optuna
from sqlalchemy import exists, func, select

try:  # Optuna's storage internals: its table definitions
    from optuna.storages._rdb import models
except ImportError:  # pragma: no cover - an Optuna that reorganised its storage
    models = None  # type: ignore[assignment]

_DIALECTS = ("sqlite", "postgresql")


def _upsert_module(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite
    from sqlalchemy.dialects import postgresql

    return postgresql


def batch_capable(storage: object) -> bool:
    """Whether :func:`record_attrs` can write to ``storage`` in one statement."""
    return (
        isinstance(storage, optuna.storages.RDBStorage)
        and models is not None
        and storage.engine.dialect.name in _DIALECTS
    )


def record_attrs(trial: optuna.Trial, attrs: dict[str, Any], *, heartbeat: bool = False) -> None:
    """Set user attributes of a running trial; with ``heartbeat``, record its heartbeat too.

    On an RDB storage (SQLite or PostgreSQL) this is one transaction of at most three
    statements; elsewhere each attribute is set through the public API (and the heartbeat,
    if asked for, through the storage's own call).

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is no longer running.
    """
    storage = getattr(trial.storage, "_backend", trial.storage)
    if not batch_capable(storage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if heartbeat and isinstance(storage, optuna.storages.RDBStorage):
            storage.record_heartbeat(trial._trial_id)
        return
    assert isinstance(storage, optuna.storages.RDBStorage)
    dialect = _upsert_module(storage.engine.dialect.name)
    trial_id = trial._trial_id
    with storage.engine.begin() as conn:  # Core: no ORM objects are needed here
        trials = models.TrialModel
        state = conn.scalar(
            select(trials.state).where(trials.trial_id == trial_id).with_for_update()
        )
        if state is None:
            raise KeyError(f"no trial with id {trial_id}")
        storage.check_trial_is_updatable(trial_id, state)
        if attrs:
            table = models.TrialUserAttributeModel.__table__
            rows = [
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in attrs.items()
            ]
            insert = dialect.insert(table).values(rows)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["trial_id", "key"],
                    set_={"value_json": insert.excluded.value_json},
                )
            )
        if heartbeat:
            insert = dialect.insert(models.TrialHeartbeatModel.__table__).values(
                trial_id=trial_id, heartbeat=func.current_timestamp()
            )
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["trial_id"], set_={"heartbeat": func.current_timestamp()}
                )
            )
    trial._cached_frozen_trial.user_attrs.update(attrs)


def running_without_heartbeat(storage: optuna.storages.RDBStorage, study_id: int) -> set[int]:
    """Ids of the study's running trials that have never recorded a heartbeat.

    Optuna's stale check only sees trials with a heartbeat row, so a worker killed between
    ``ask`` and its trial's first heartbeat would leave the trial running for ever. The
    worker watches these trials itself (see :meth:`cellsearch.search.worker.Worker.
    recover_stale`).
    """
    if models is None:  # pragma: no cover - an Optuna that reorganised its storage
        return set()
    trials, beats = models.TrialModel, models.TrialHeartbeatModel
    with storage.engine.connect() as conn:
        rows = conn.scalars(
            select(trials.trial_id)
            .where(trials.study_id == study_id)
            .where(trials.state == optuna.trial.TrialState.RUNNING)
            .where(~exists().where(beats.trial_id == trials.trial_id))
        )
        return set(rows)
