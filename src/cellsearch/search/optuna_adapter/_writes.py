"""Batched writes to Optuna's RDB storage for the worker's hot path.

Optuna commits one transaction per user attribute (``Trial.set_user_attr``) and another
for each heartbeat, and on its PostgreSQL path looks every attribute up before writing
it. A trial records about twenty attributes, so on a short trial those round trips were
most of the worker's cost. :func:`record_attrs` writes a trial's attributes (and, when
asked, its heartbeat) as one ``INSERT ... ON CONFLICT DO UPDATE`` in one transaction on
Optuna's engine (on SQLite run with one parameter set per attribute, on PostgreSQL over
two arrays with ``unnest``), with Optuna's own table definitions and its own check
that the trial is still running. Optuna has no public batch call; a storage that is not
an ``RDBStorage`` on SQLite or PostgreSQL (in-memory, journal, MySQL) takes the public
per-attribute path, a feature for those storages. An Optuna whose internals moved takes
no path at all: it fails at import or in :func:`~cellsearch.search.optuna_adapter.check_internals`.

:class:`AdapterStorage` is Optuna's ``RDBStorage`` with two changes for big studies: a new
trial (one made from no template) is numbered from the number of the study's latest
trial, not by counting the study's trials, and the reads behind Optuna's trial cache take
one query per table instead of one per table and 500 trials (see the class).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Container, Iterable
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Integer, String, Text, bindparam, func, insert, or_, select

from cellsearch.search.optuna_adapter._frozen import build, trial_columns
from cellsearch.search.optuna_adapter._tables import HEARTBEATS, STUDIES, TRIALS, USER
from cellsearch.search.optuna_adapter._versions import internals_error
from cellsearch.search.optuna_adapter.bulk_write import stored_datetime

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
    upsert_attrs, upsert_beat = _upserts(storage.engine.dialect.name)
    with storage.engine.begin() as conn:  # Core: no ORM objects are needed here
        state = conn.scalar(
            select(TRIALS.c.state).where(TRIALS.c.trial_id == trial_id).with_for_update()
        )
        if state is None:
            raise KeyError(f"no trial with id {trial_id}")
        if state.is_finished():
            # Said here, not by Optuna's check, which reads the trial on a second
            # connection inside this transaction: behind a pooler whose server
            # connections are all held by such transactions, that one never comes.
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"Trial#{trial.number} has already finished and can not be updated."
            )
        if attrs and conn.dialect.name == "postgresql":
            values = [json.dumps(v) for v in attrs.values()]
            conn.execute(
                upsert_attrs, {"trial_id": trial_id, "keys": list(attrs), "values": values}
            )
        elif attrs:
            rows = [
                {"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                for k, v in attrs.items()
            ]
            conn.execute(upsert_attrs, rows)
        if heartbeat:
            conn.execute(upsert_beat, {"trial_id": trial_id})
    trial._cached_frozen_trial.user_attrs.update(attrs)


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
        pairs = (
            func.unnest(
                bindparam("keys", type_=postgresql.ARRAY(String)),
                bindparam("values", type_=postgresql.ARRAY(Text)),
            )
            .table_valued("k", "v")
            .render_derived()
        )
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


class AdapterStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, numbering new trials without a count and reading trials in
    one query per table. Elsewhere (another dialect than SQLite and PostgreSQL, a trial
    made from a template) it is Optuna's own code.

    **Numbering.** Optuna numbers a new trial by counting the study's trials with a smaller id
    (``TrialModel.count_past_trials``), with the study's row locked so that creators take
    turns. The count reads every trial of the study: at 100,000 trials it was the largest
    share of the database's time per trial. Here, under the same lock, the new trial's
    number is the number of the study's latest trial plus one (the trial before it in id
    order; 0 for the first), read through the primary key.

    That is the same number. Optuna never deletes a single trial, and every creator,
    Optuna's and this one, numbers under the study's lock (on SQLite the database's one
    write lock), so a study's numbers are 0, 1, 2, ... in the order of its trial ids:
    the latest trial's number is the count of the trials before it. A test interleaves
    both creators, from threads, on both databases.

    Only a trial made from no template (``create_new_trial(study_id)``, the claim's) takes
    this path; ``enqueue_trial``'s and ``add_trial``'s go through Optuna's own code.

    **Reading.** Optuna's trial cache (``_CachedStorage``) asks ``_get_trials`` for the
    trials it has not seen finish: on its first read, the whole study. Optuna's own read
    loads each child table with ``selectinload``, one ``IN`` list per 500 trials: about
    1,000 queries for 100,000 trials, which every worker paid at its first claim. Here the
    trials are selected once and each child table read with one query for the selection,
    by :func:`~cellsearch.search.optuna_adapter._frozen.build` (the bulk reader's; it
    builds the trials Optuna builds, tested against Optuna's own read).
    """

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        if self.engine.dialect.name not in _DIALECTS:
            return super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        t = TRIALS.c
        conditions = [t.study_id == study_id]
        if states is not None:
            conditions.append(t.state.in_(list(cast(Iterable[TrialState], states))))
        if trial_id_greater_than > -1:  # as Optuna selects: the unfinished it knows, and newer
            included = [i for i in included_trial_ids if i <= trial_id_greater_than]
            newer = t.trial_id > trial_id_greater_than
            conditions.append(or_(t.trial_id.in_(included), newer) if included else newer)
            # The same trials, bounded below, so that the server can walk the primary key
            # from the oldest of them whatever its statistics say (on stale ones it read
            # the study's whole index: 2 ms a call at 100,000 trials).
            conditions.append(t.trial_id >= min(included, default=trial_id_greater_than + 1))
        with self.engine.connect() as conn:
            rows = conn.execute(trial_columns().where(*conditions).order_by(t.trial_id)).all()
            # a study with trials exists: only an empty answer needs the check (a round
            # trip fewer on most of the cache's reads)
            if not rows and conn.scalar(_STUDY_EXISTS, {"study_id": study_id}) is None:
                raise _no_study(study_id)
            few = len(rows) <= _LISTED_IDS
            chosen = (
                [row.trial_id for row in rows] if few else select(t.trial_id).where(*conditions)
            )
            return build(conn, rows, chosen)

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        if template_trial is not None or self.engine.dialect.name not in _DIALECTS:
            return super()._create_new_trial(study_id, template_trial)
        started = dt.datetime.now()  # naive local time, as Optuna's own FrozenTrial has it
        params = {"study_id": study_id, "started": stored_datetime(started)}
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # the lock first, as Optuna takes it
                if conn.scalar(_LOCK_STUDY, params) is None:
                    raise _no_study(study_id)
                trial_id, number = conn.execute(_INSERT_NUMBERED, params).one()
            else:  # SQLite: the write first, which takes the database's write lock
                trial_id, number = conn.execute(_INSERT_NUMBERED, params).one()
                if conn.scalar(_STUDY_EXISTS, params) is None:
                    raise _no_study(study_id)
        return FrozenTrial(
            number=number,
            state=TrialState.RUNNING,
            value=None,
            values=None,
            datetime_start=started,
            datetime_complete=None,
            params={},
            distributions={},
            user_attrs={},
            system_attrs={},
            intermediate_values={},
            trial_id=trial_id,
        )


def _no_study(study_id: int) -> KeyError:
    """The error Optuna's storage raises for a study id it does not hold (a KeyError)."""
    return KeyError(f"No study with study_id {study_id} exists.")


_STUDY = bindparam("study_id", type_=Integer)
_STUDY_EXISTS = select(STUDIES.c.study_id).where(STUDIES.c.study_id == _STUDY)
_LOCK_STUDY = _STUDY_EXISTS.with_for_update()
# Up to this many trials, their child rows are read by a list of their ids; past it, by the
# selection as a subquery (a long parameter list costs more than the subquery).
_LISTED_IDS = 500
_LATEST_NUMBER = (
    select(TRIALS.c.number + 1)
    .where(TRIALS.c.study_id == _STUDY)
    .order_by(TRIALS.c.trial_id.desc())
    .limit(1)
    .scalar_subquery()
)
_INSERT_NUMBERED = (
    insert(TRIALS)
    .values(
        number=func.coalesce(_LATEST_NUMBER, 0),
        study_id=_STUDY,
        state=TrialState.RUNNING,
        datetime_start=bindparam("started", type_=TRIALS.c.datetime_start.type),
    )
    .returning(TRIALS.c.trial_id, TRIALS.c.number)
)
