""":class:`AdapterStorage`: Optuna's ``RDBStorage`` with the worker's hot paths in SQL.

Optuna's RDB storage goes through its ORM for every call: a session, the trial's row
loaded as an object, a flush, and for a trial read one lazy load per child table. On a
minimal trial that was most of a worker's time in Optuna (a profile of 200 trials on
PostgreSQL: reading a running trial 25 ms a trial under the profiler, three times a
trial). Here the calls a trial makes on the way (its reads, its parameters, its reported
values, its end) are statements built once on Optuna's own table definitions. They
write the rows Optuna writes and raise what Optuna raises; the tests run each against
Optuna's own method on both databases.

Only SQLite and PostgreSQL take these paths; on another dialect every method is
Optuna's own. An Optuna whose internals moved fails at import or in
:func:`~cellsearch.search.optuna_adapter.check_internals`, which checks the signature of
every method overridden here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Container, Iterable, Iterator, Sequence
from typing import Any, cast

import optuna
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy import cast as cast_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from cellsearch.search.optuna_adapter._frozen import among, build, running_trial, trial_columns
from cellsearch.search.optuna_adapter._one_query import run_together, together_possible
from cellsearch.search.optuna_adapter._tables import (
    PARAMS,
    STEPS,
    STUDIES,
    TRIALS,
    UNIQUE,
    USER,
    VALUES,
    models,
)
from cellsearch.search.optuna_adapter._writes import (
    LOCK_STATE,
    NOT_FOUND,
    attr_arrays,
    key_value_pairs,
    not_finished,
    state_of,
    updatable,
    write_attrs,
)
from cellsearch.search.optuna_adapter.bulk_write import stored_datetime

_DIALECTS = ("sqlite", "postgresql")


class AdapterStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage, with the calls of a trial's life in SQL (see the module).
    Elsewhere (another dialect than SQLite and PostgreSQL, a trial made from a template)
    it is Optuna's own code.

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

    Only a trial made from no template (``create_new_trial(study_id)``, the claim's) or from
    a running one holding only user attributes (``new_trial(study, attrs)``, a claim's deal)
    takes this path; ``enqueue_trial``'s and ``add_trial``'s go through Optuna's own code.
    On PostgreSQL the lock and the insert reach the server as one query
    (:func:`~cellsearch.search.optuna_adapter._one_query.run_together`), which it runs and
    commits without waiting on the worker in between: the lock is held for the server's
    time alone.

    **Reading.** Optuna's trial cache (``_CachedStorage``) asks ``_get_trials`` for the
    trials it has not seen finish: on its first read, the whole study. Optuna's own read
    loads each child table with ``selectinload``, one ``IN`` list per 500 trials: about
    1,000 queries for 100,000 trials, which every worker paid at its first claim. Here the
    trials are selected once and each child table read with one query for the selection,
    by :func:`~cellsearch.search.optuna_adapter._frozen.build` (the bulk reader's; it
    builds the trials Optuna builds, tested against Optuna's own read). ``get_trial`` (a
    running trial: the cache keeps only finished ones) reads the same way.

    **Writing a trial.** A parameter and an intermediate value are each one statement
    that writes only while the trial is not finished (``INSERT ... SELECT ... WHERE``);
    only when it writes nothing is the trial read, to raise what Optuna raises (a
    parameter Optuna would ignore as written already is ignored the same way). A trial's
    end (``set_trial_state_values``) locks its row as Optuna does, upserts its values and
    sets its state, without a second connection (Optuna's check of a finished trial
    reads it again on another, which behind a pooler can wait forever); on PostgreSQL
    the lock and the two writes are one query, as a new trial's are.
    """

    def _hot(self) -> bool:
        return self.engine.dialect.name in _DIALECTS

    @contextlib.contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection for one call, its errors raised as Optuna's.

        On PostgreSQL each statement commits by itself: one round trip, where a
        transaction adds two (``BEGIN``, and ``COMMIT`` or ``ROLLBACK``), each a wait for
        the server and a turn of the pooler's connection (with 256 workers, a third of
        all statements). The calls that take it are correct statement by statement: a
        write is one statement, and the reads beside it (a distribution to check, the
        trial whose error to raise) see, as Optuna's session does under ``READ
        COMMITTED``, a snapshot per statement. On SQLite a write's statements are one
        transaction, as before.
        """
        with _storage_errors(), self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execution_options(isolation_level="AUTOCOMMIT")
                yield conn
            elif write:
                with conn.begin():
                    yield conn
            else:
                yield conn

    def get_trial(self, trial_id: int) -> FrozenTrial:
        if not self._hot():
            return super().get_trial(trial_id)
        with self._connection() as conn:
            rows = conn.execute(_ONE_TRIAL, {"trial_id": trial_id}).all()
            if not rows:
                raise KeyError(NOT_FOUND)
            return build(conn, rows, [trial_id])[0]

    def _get_trials(
        self,
        study_id: int,
        states: Container[TrialState] | None,
        included_trial_ids: set[int],
        trial_id_greater_than: int,
    ) -> list[FrozenTrial]:
        if not self._hot():
            return super()._get_trials(study_id, states, included_trial_ids, trial_id_greater_than)
        t = TRIALS.c
        conditions = [t.study_id == study_id]
        if states is not None:
            conditions.append(t.state.in_(list(cast(Iterable[TrialState], states))))
        if trial_id_greater_than > -1:  # as Optuna selects: the unfinished it knows, and newer
            included = [i for i in included_trial_ids if i <= trial_id_greater_than]
            newer = t.trial_id > trial_id_greater_than
            known = among(self.engine.dialect.name, t.trial_id, included)
            conditions.append(or_(known, newer) if included else newer)
            # The same trials, bounded below, so that the server can walk the primary key
            # from the oldest of them whatever its statistics say (on stale ones it read
            # the study's whole index: 2 ms a call at 100,000 trials).
            conditions.append(t.trial_id >= min(included, default=trial_id_greater_than + 1))
        return self._read_where(study_id, conditions)[0]

    def _changed_trials(
        self,
        study_id: int,
        unfinished_ids: Collection[int],
        last_finished_id: int,
        wanted: Collection[TrialState],
    ) -> tuple[list[FrozenTrial], list[int]]:
        """What a reader of finished trials and of the ``wanted`` unfinished states must
        see anew, for :class:`~cellsearch.search.optuna_adapter._trial_cache.TrialCache`.

        Looked at: of the ``unfinished_ids``, those now finished or ``wanted``; and every
        trial past ``last_finished_id`` not among them (new to the reader). Returned: the
        ones finished or ``wanted``, read whole, and the ids of the others (new trials
        in a state not wanted, whose contents the reader does not need)."""
        t = TRIALS.c
        unfinished = list(unfinished_ids)
        kept = [state for state in TrialState if state.is_finished() or state in wanted]
        newer = t.trial_id > last_finished_id
        if unfinished:
            known = among(self.engine.dialect.name, t.trial_id, unfinished)
            changed = or_(and_(known, t.state.in_(kept)), and_(newer, ~known))
        else:
            changed = newer
        lowest = min([*unfinished, last_finished_id + 1])  # a bound below, as in _get_trials
        conditions = [t.study_id == study_id, changed, t.trial_id >= lowest]
        return self._read_where(study_id, conditions, kept)

    def _read_where(
        self, study_id: int, conditions: list[Any], built: Collection[TrialState] | None = None
    ) -> tuple[list[FrozenTrial], list[int]]:
        """The study's trials that meet ``conditions``, in id order (KeyError: no study):
        those in a ``built`` state (all, for None) read whole, and the ids of the others."""
        t = TRIALS.c
        # from the study's row, the trials joined to it: no row at all is no study, and
        # one row without a trial is a study with none to read (one round trip for both)
        joined = STUDIES.outerjoin(TRIALS, and_(t.study_id == STUDIES.c.study_id, *conditions))
        query = trial_columns().select_from(joined).where(STUDIES.c.study_id == study_id)
        with self._connection() as conn:
            found = conn.execute(query.order_by(t.trial_id)).all()
            if not found:
                raise _no_study(study_id)
            rows, others = [], []
            for row in found:
                if row.trial_id is None:
                    continue
                if built is None or row.state in built:
                    rows.append(row)
                else:
                    others.append(row.trial_id)
            if len(rows) <= _LISTED_IDS:
                chosen: Any = [row.trial_id for row in rows]
            else:
                chosen = select(t.trial_id).where(*conditions)
                if built is not None:
                    chosen = chosen.where(t.state.in_(list(built)))
            return build(conn, rows, chosen), others

    def _create_new_trial(
        self, study_id: int, template_trial: FrozenTrial | None = None
    ) -> FrozenTrial:
        attrs = _attributes_only(template_trial)
        postgres = self.engine.dialect.name == "postgresql"
        if attrs is None or not self._hot() or (postgres and not together_possible(self.engine)):
            return super()._create_new_trial(study_id, template_trial)
        started = dt.datetime.now()  # naive local time, as Optuna's own FrozenTrial has it
        if template_trial is not None and template_trial.datetime_start is not None:
            started = template_trial.datetime_start  # as Optuna's template path takes it
        params = {"study_id": study_id, "started": stored_datetime(started)}
        with self._connection(write=True) as conn:
            if postgres:
                # the lock and the insert as one query: the server takes and gives back
                # the lock without waiting on this process between (the insert's
                # snapshot still follows the lock: it sees the previous holder's trial)
                _, inserted = run_together(conn, _NUMBERING, {**params, **attr_arrays(attrs)})
                made = inserted[0] if inserted else None
            else:  # SQLite: the write first, which takes the database's one write lock
                made = conn.execute(_INSERT_NUMBERED, params).first()
                if made is not None and attrs:
                    write_attrs(conn, made[0], attrs)
        if made is None:
            raise _no_study(study_id)
        trial_id, number = made
        return running_trial(started, attrs, number=number, trial_id=trial_id)

    def _set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
        previous_distribution: BaseDistribution | None,
    ) -> None:
        if not self._hot():
            super()._set_trial_param(trial_id, param_name, param_value_internal, distribution,
                                     previous_distribution)  # fmt: skip
            return
        row = {"trial_id": trial_id, "name": param_name, "value": param_value_internal,
               "distribution": distribution_to_json(distribution)}  # fmt: skip
        with self._connection(write=True) as conn:
            previous = previous_distribution
            if previous is None:  # as Optuna: the study's first record of the parameter
                text = conn.scalar(_FIRST_DISTRIBUTION, row)
                previous = None if text is None else json_to_distribution(text)
            if previous is not None:
                try:
                    check_distribution_compatibility(previous, distribution)
                except ValueError:
                    updatable(conn, trial_id)  # Optuna looks at the trial first
                    raise
            if conn.execute(_dialect(conn, _INSERT_PARAM), row).first() is None:
                updatable(conn, trial_id)  # else written already: Optuna ignores it too

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        if not self._hot():
            super().set_trial_intermediate_value(trial_id, step, intermediate_value)
            return
        stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(
            intermediate_value
        )
        row = {"trial_id": trial_id, "step": step, "value": stored, "kind": kind}
        with self._connection(write=True) as conn:
            if conn.execute(_dialect(conn, _UPSERT_STEP), row).first() is None:
                updatable(conn, trial_id)  # raises: the trial is not there, or finished

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if not self._hot():
            return super().set_trial_state_values(trial_id, state, values)
        if state.is_finished() and together_possible(self.engine):
            return self._finish(trial_id, state, values or ())
        try:
            with _storage_errors(), self.engine.begin() as conn:
                current = updatable(conn, trial_id, lock=True)
                if values is not None:
                    upsert = _dialect(conn, _UPSERT_VALUE)
                    for objective, value in enumerate(values):
                        stored, kind = models.TrialValueModel.value_to_stored_repr(value)
                        conn.execute(upsert, {"trial_id": trial_id, "objective": objective,
                                              "value": stored, "kind": kind})  # fmt: skip
                if state == TrialState.RUNNING and current != TrialState.WAITING:
                    return False
                now = stored_datetime(dt.datetime.now())
                changes: dict[str, Any] = {"state": state}
                if state == TrialState.RUNNING:
                    changes["datetime_start"] = now
                if state.is_finished():
                    changes["datetime_complete"] = now
                conn.execute(update(TRIALS).where(TRIALS.c.trial_id == trial_id).values(changes))
        except IntegrityError:
            return False
        return True

    def _finish(self, trial_id: int, state: TrialState, values: Sequence[float]) -> bool:
        """:meth:`set_trial_state_values` for a trial's end on PostgreSQL: the lock on the
        trial's row, its values and its state as one query (:data:`_FINISHING`)."""
        stored = [models.TrialValueModel.value_to_stored_repr(value) for value in values]
        params = {"trial_id": trial_id, "state": state,
                  "now": stored_datetime(dt.datetime.now()),
                  "objectives": list(range(len(stored))), "values": [v for v, _ in stored],
                  "kinds": [kind.name for _, kind in stored]}  # fmt: skip
        try:
            with self._connection(write=True) as conn:
                found = run_together(conn, _FINISHING, params)[0]
        except IntegrityError:
            return False
        state_of(found[0] if found else None)  # Optuna's errors; then nothing was written
        return True


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Database errors raised as Optuna's storage raises them: a ``StorageInternalError``
    from the SQLAlchemy error; an ``IntegrityError`` as it is (Optuna's callers catch it)."""
    try:
        yield
    except IntegrityError:
        raise
    except SQLAlchemyError as exc:
        raise optuna.exceptions.StorageInternalError(
            "An exception is raised during the commit."
        ) from exc


def _attributes_only(template: FrozenTrial | None) -> dict[str, Any] | None:
    """The user attributes of a template that is a new running trial and nothing else
    (no template: none), which the numbered insert makes; None for any other template
    (an enqueued or added trial), which Optuna's own code makes."""
    if template is None:
        return {}
    if template.state != TrialState.RUNNING or template.datetime_complete is not None:
        return None
    others = (template.params, template.distributions, template.system_attrs,
              template.intermediate_values, template.values)  # fmt: skip
    return None if any(others) else template.user_attrs


def _no_study(study_id: int) -> KeyError:
    """The error Optuna's storage raises for a study id it does not hold (a KeyError)."""
    return KeyError(f"No study with study_id {study_id} exists.")


def _dialect(conn: Connection, statements: dict[str, Any]) -> Any:
    return statements[conn.dialect.name]


def _bound(table: Any, **params: str) -> dict[str, Any]:
    """A row of ``table`` to insert: its trial id, and each named column bound to the
    parameter of the given name, typed as the column."""
    bound = {column: bindparam(name, type_=table.c[column].type) for column, name in params.items()}
    return {"trial_id": _TRIAL, **bound}


def _upserts(table: Any, columns: dict[str, Any], key: Sequence[str], *,
             update_on_conflict: bool) -> dict[str, Any]:  # fmt: skip
    """Per dialect: ``INSERT INTO table (columns) SELECT values WHERE the trial can be
    updated ON CONFLICT (key) DO UPDATE | DO NOTHING RETURNING 1``, built once."""
    writable = exists().where(not_finished(_TRIAL))
    rows = select(*columns.values()).where(writable)
    out: dict[str, Any] = {}
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql)):
        statement = dialect.insert(table).from_select(list(columns), rows)
        if update_on_conflict:
            excluded = statement.excluded
            changed = {c: excluded[c] for c in columns if c not in key}
            statement = statement.on_conflict_do_update(index_elements=list(key), set_=changed)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(key))
        out[name] = statement.returning(literal(1))
    return out


_TRIAL = bindparam("trial_id", type_=Integer)
_STUDY = bindparam("study_id", type_=Integer)
_STUDY_EXISTS = select(STUDIES.c.study_id).where(STUDIES.c.study_id == _STUDY)
_LOCK_STUDY = _STUDY_EXISTS.with_for_update()
_ONE_TRIAL = trial_columns().where(TRIALS.c.trial_id == _TRIAL)
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
_INSERT_NUMBERED = (  # nothing for a missing study
    insert(TRIALS)
    .from_select(
        ["number", "study_id", "state", "datetime_start"],
        select(
            func.coalesce(_LATEST_NUMBER, 0),
            STUDIES.c.study_id,
            literal(TrialState.RUNNING, TRIALS.c.state.type),
            bindparam("started", type_=TRIALS.c.datetime_start.type),
        ).where(STUDIES.c.study_id == _STUDY),
    )
    .returning(TRIALS.c.trial_id, TRIALS.c.number)
)
_FIRST_DISTRIBUTION = (
    select(PARAMS.c.distribution_json)
    .join(TRIALS, TRIALS.c.trial_id == PARAMS.c.trial_id)
    .where(
        TRIALS.c.study_id
        == select(TRIALS.c.study_id).where(TRIALS.c.trial_id == _TRIAL).scalar_subquery(),
        PARAMS.c.param_name == bindparam("name", type_=PARAMS.c.param_name.type),
    )
    .limit(1)
)
_INSERT_PARAM = _upserts(
    PARAMS,
    _bound(PARAMS, param_name="name", param_value="value", distribution_json="distribution"),
    UNIQUE["TrialParamModel"],
    update_on_conflict=False,
)
_UPSERT_STEP = _upserts(
    STEPS,
    _bound(STEPS, step="step", intermediate_value="value", intermediate_value_type="kind"),
    UNIQUE["TrialIntermediateValueModel"],
    update_on_conflict=True,
)
_UPSERT_VALUE = _upserts(
    VALUES,
    _bound(VALUES, objective="objective", value="value", value_type="kind"),
    UNIQUE["TrialValueModel"],
    update_on_conflict=True,
)


def _insert_with_attrs() -> Any:
    """PostgreSQL: :data:`_INSERT_NUMBERED` and the new trial's user attributes (the arrays
    ``keys`` and ``values``, JSON texts; empty for none) as one statement."""
    trial = _INSERT_NUMBERED.cte("new_trial")
    pairs = key_value_pairs()
    rows = select(trial.c.trial_id, pairs.c.k, pairs.c.v).select_from(trial).join(pairs, true())
    attrs = insert(USER).from_select(["trial_id", "key", "value_json"], rows).cte("new_attrs")
    return select(trial.c.trial_id, trial.c.number).add_cte(attrs)


_INSERT_WITH_ATTRS = _insert_with_attrs()
_NUMBERING = (_LOCK_STUDY, _INSERT_WITH_ATTRS)


def _finishing() -> tuple[Any, ...]:
    """PostgreSQL, sent together: the trial's row locked and its state read, then its
    values (the arrays ``objectives``, ``values`` and ``kinds``) upserted and its state
    and end set, both only while it is not finished (the lock keeps it so)."""
    running = exists().where(not_finished(_TRIAL))
    rows = (
        func.unnest(
            bindparam("objectives", type_=postgresql.ARRAY(Integer)),
            bindparam("values", type_=postgresql.ARRAY(Float)),
            bindparam("kinds", type_=postgresql.ARRAY(String)),
        )
        .table_valued("o", "v", "k")
        .render_derived()
    )
    kind = cast_(rows.c.k, VALUES.c.value_type.type)
    chosen = select(_TRIAL, rows.c.o, rows.c.v, kind).where(running)
    upsert = postgresql.insert(VALUES).from_select(
        ["trial_id", "objective", "value", "value_type"], chosen
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=list(UNIQUE["TrialValueModel"]),
        set_={"value": upsert.excluded.value, "value_type": upsert.excluded.value_type},
    )
    end = (
        update(TRIALS)
        .where(not_finished(_TRIAL))
        .values(
            state=bindparam("state", type_=TRIALS.c.state.type),
            datetime_complete=bindparam("now", type_=TRIALS.c.datetime_complete.type),
        )
    )
    return LOCK_STATE, upsert, end


_FINISHING = _finishing()
