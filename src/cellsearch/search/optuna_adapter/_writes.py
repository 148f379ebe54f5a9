"""Batched writes to Optuna's RDB storage for the worker's hot path.

Optuna commits one transaction per user attribute (``Trial.set_user_attr``) and another
for each heartbeat, and on its PostgreSQL path looks every attribute up before writing
it. A trial records about twenty attributes, so on a short trial those round trips were
most of the worker's cost. :func:`record_attrs` writes a trial's attributes (and, when
asked, its heartbeat) as one ``INSERT ... ON CONFLICT DO UPDATE`` in one transaction on
Optuna's engine (on SQLite run with one parameter set per attribute, on PostgreSQL over
two arrays with ``unnest``), with Optuna's own table definitions and its own check
that the trial is still running (on PostgreSQL through psycopg, the lock on the trial's
row and the writes go as one query: :mod:`._one_query`). Optuna has no public batch
call; a storage that is not an ``RDBStorage`` on SQLite or PostgreSQL (in-memory,
journal, MySQL) takes the public per-attribute path, a feature for those storages. An
Optuna whose internals moved takes
no path at all: it fails at import or in :func:`~cellsearch.search.optuna_adapter.check_internals`.

Optuna's own per-trial calls on the same path (parameters, reported values, a trial's
end and reads) are :class:`~cellsearch.search.optuna_adapter._storage.AdapterStorage`'s.
"""

from __future__ import annotations

import functools
import json
from typing import Any, cast

import optuna
from optuna.trial import TrialState
from sqlalchemy import (
    Boolean,
    Connection,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)

from cellsearch.search.optuna_adapter._one_query import run_together, together_possible
from cellsearch.search.optuna_adapter._tables import HEARTBEATS, TRIALS, USER
from cellsearch.search.optuna_adapter._versions import internals_error

try:
    from optuna.storages._cached_storage import _CachedStorage
except ImportError as exc:  # no fallback: a missed unwrap would silently skip the batch path
    raise internals_error(["optuna.storages._cached_storage._CachedStorage"]) from exc

_DIALECTS = ("sqlite", "postgresql")


def rdb_backend(storage: object) -> optuna.storages.RDBStorage | None:
    """The RDB storage behind ``storage`` (a study's storage is Optuna's cache around
    it), or None when there is none."""
    if isinstance(storage, _CachedStorage):
        storage = storage._backend
    return storage if isinstance(storage, optuna.storages.RDBStorage) else None


def batch_capable(storage: object) -> bool:
    """Whether :func:`record_attrs` writes to ``storage`` in one transaction."""
    rdb = rdb_backend(storage)
    return rdb is not None and rdb.engine.dialect.name in _DIALECTS


def record_attrs(trial: optuna.Trial, attrs: dict[str, Any], *, heartbeat: bool = False) -> None:
    """Set user attributes of a running trial; with ``heartbeat``, record its heartbeat too.

    On an RDB storage (SQLite or PostgreSQL) this is one transaction of at most three
    statements; elsewhere each attribute is set through the public API (and the heartbeat,
    if asked for, through the storage's own call).

    Raises:
        optuna.exceptions.UpdateFinishedTrialError: the trial is no longer running.
    """
    storage = rdb_backend(trial.storage)
    trial_id = trial._trial_id
    if storage is None or not batch_capable(storage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if heartbeat and storage is not None:
            storage.record_heartbeat(trial_id)
        return
    if together_possible(storage.engine):  # the lock and the writes: one round trip
        with storage.engine.connect() as conn:
            values = {"trial_id": trial_id, "beat": heartbeat, **attr_arrays(attrs)}
            found = run_together(conn, _locked_writes(), values)[0]
        state_of(found[0] if found else None)
        trial._cached_frozen_trial.user_attrs.update(attrs)
        return
    with storage.engine.begin() as conn:  # Core: no ORM objects are needed here
        # The check on this connection, not by Optuna's, which reads a finished trial on a
        # second connection inside this transaction: behind a pooler whose server
        # connections are all held by such transactions, that one never comes.
        updatable(conn, trial_id, lock=True)
        if attrs:
            write_attrs(conn, trial_id, attrs)
        if heartbeat:
            conn.execute(_upserts(conn.dialect.name)[1], {"trial_id": trial_id})
    trial._cached_frozen_trial.user_attrs.update(attrs)


def updatable(conn: Connection, trial_id: int, *, lock: bool = False) -> TrialState:
    """The trial's state; raises Optuna's errors for a trial that is not there
    (``KeyError``) or has finished (``UpdateFinishedTrialError``), read on ``conn`` (with
    ``lock``, its row locked until the transaction ends)."""
    return state_of(conn.execute(LOCK_STATE if lock else _STATE, {"trial_id": trial_id}).first())


def state_of(found: Any) -> TrialState:
    """The state of a trial read as ``(state, number)`` (by name, from a query sent
    together), or Optuna's error for a trial not found (None) or finished."""
    if found is None:
        raise KeyError(NOT_FOUND)
    state, number = found
    state = TrialState[state] if isinstance(state, str) else state
    if state.is_finished():
        raise optuna.exceptions.UpdateFinishedTrialError(
            f"Trial#{number} has already finished and can not be updated."
        )
    return cast(TrialState, state)


def write_attrs(conn: Connection, trial_id: int, attrs: dict[str, Any]) -> None:
    """Upsert user attributes of trial ``trial_id`` in ``conn``'s transaction, in one
    statement (SQLite or PostgreSQL; the caller checks the trial)."""
    upsert = _upserts(conn.dialect.name)[0]
    if conn.dialect.name == "postgresql":
        conn.execute(upsert, {"trial_id": trial_id, **attr_arrays(attrs)})
    else:
        rows = [
            {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
        ]
        conn.execute(upsert, rows)


def attr_arrays(attrs: dict[str, Any]) -> dict[str, list[str]]:
    """The parameters of :func:`key_value_pairs`: the attributes' keys and JSON values."""
    return {"keys": list(attrs), "values": [json.dumps(v) for v in attrs.values()]}


def key_value_pairs() -> Any:
    """PostgreSQL: the rows ``(k, v)`` of the bound arrays ``keys`` and ``values`` (one
    statement writes any number of attributes)."""
    from sqlalchemy.dialects import postgresql

    return (
        func.unnest(
            bindparam("keys", type_=postgresql.ARRAY(String)),
            bindparam("values", type_=postgresql.ARRAY(Text)),
        )
        .table_valued("k", "v")
        .render_derived()
    )


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any]:
    """The attribute and heartbeat upserts for ``dialect``, built once.

    Built once so that SQLAlchemy compiles each once: a multi-row ``VALUES`` list is
    compiled anew for every call (measured 5x slower on SQLite and 2x on PostgreSQL for a
    trial's twenty attributes). SQLite runs the single-row upsert with many parameter
    sets; PostgreSQL inserts from ``unnest(keys, values)``, one statement for the server
    instead of one per attribute.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = sqlite.insert if dialect == "sqlite" else postgresql.insert
    attrs = insert(USER)
    if dialect == "postgresql":
        pairs = key_value_pairs()
        rows = select(bindparam("trial_id", type_=Integer), pairs.c.k, pairs.c.v)
        attrs = attrs.from_select(["trial_id", "key", "value_json"], rows)
    attrs = attrs.on_conflict_do_update(
        index_elements=["trial_id", "key"], set_={"value_json": attrs.excluded.value_json}
    )
    beat = insert(HEARTBEATS).values(heartbeat=func.current_timestamp())
    beat = beat.on_conflict_do_update(
        index_elements=["trial_id"], set_={"heartbeat": func.current_timestamp()}
    )
    return attrs, beat


def not_finished(trial_id: Any) -> Any:
    """The trial's row, not finished: the condition of a write sent together with the lock
    on that row (the states compared one by one: an ``IN`` list is expanded at execution,
    which a query sent together does not pass through)."""
    states = (TRIALS.c.state == state for state in (TrialState.RUNNING, TrialState.WAITING))
    return and_(TRIALS.c.trial_id == trial_id, or_(*states))


@functools.cache
def _locked_writes() -> tuple[Any, ...]:
    """PostgreSQL, sent together: the trial's row locked and its state read, then its
    attributes (the arrays ``keys`` and ``values``) and, if ``beat``, its heartbeat
    upserted, each only while the trial is not finished (the lock keeps it so: a trial
    finishes under the same lock)."""
    from sqlalchemy.dialects import postgresql

    trial_id = bindparam("trial_id", type_=Integer)
    running = exists().where(not_finished(trial_id))
    pairs = key_value_pairs()
    rows = select(trial_id, pairs.c.k, pairs.c.v).where(running)
    attrs = postgresql.insert(USER).from_select(["trial_id", "key", "value_json"], rows)
    attrs = attrs.on_conflict_do_update(
        index_elements=["trial_id", "key"], set_={"value_json": attrs.excluded.value_json}
    )
    now = func.current_timestamp()
    beat_row = select(trial_id, now).where(running, bindparam("beat", type_=Boolean))
    beat = postgresql.insert(HEARTBEATS).from_select(["trial_id", "heartbeat"], beat_row)
    beat = beat.on_conflict_do_update(index_elements=["trial_id"], set_={"heartbeat": now})
    return LOCK_STATE, attrs, beat


NOT_FOUND = "Record does not exist."  # Optuna's message for a trial id it does not hold
_STATE = select(TRIALS.c.state, TRIALS.c.number).where(
    TRIALS.c.trial_id == bindparam("trial_id", type_=Integer)
)
LOCK_STATE = _STATE.with_for_update()
