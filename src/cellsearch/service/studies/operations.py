"""Study operations behind the API and the CLI (keyword-only, no HTTP here)."""

from __future__ import annotations

import contextlib
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cellsearch.search.optuna_adapter import bulk_read, trial_groups
from cellsearch.search.record import COUNTED_FAILURES, TrialRecord
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.artifacts.operations import detach
from cellsearch.service.datasets.operations import check_dataset_exists, confirm_dataset
from cellsearch.service.errors import Conflict, Forbidden, NotFound
from cellsearch.service.store.db import connection_scope, database_key, session_scope
from cellsearch.service.store.marker_cache import FRESH, MarkerCache, MarkerMemo
from cellsearch.service.store.tables import StudyRecord, utcnow
from cellsearch.service.studies.labels import label_study
from cellsearch.service.studies.warm_start import seed_study
from cellsearch.service.workers.wakeup import notify_work

# action -> (statuses it applies to, resulting status)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "cancel": (("running", "paused"), "cancelled"),
}


@dataclass
class TrialCounts:
    """Trials of one study by state; ``failed`` are model outcomes, ``requeued`` are not.

    Finished re-evaluation runs are counted apart (``reevaluated``), not as search trials.
    """

    running: int = 0
    waiting: int = 0
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    requeued: int = 0
    reevaluated: int = 0
    by_cell: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        """Trials that used a unit of the budget."""
        return self.complete + self.pruned + self.failed


def create_study(
    *,
    engine: Engine,
    storage: optuna.storages.RDBStorage,
    spec: StudySpec,
    created_by: str | None = None,
) -> StudyRecord:
    """Create the Optuna study and the service's record, or neither.

    ``created_by`` is the name of the API key that asked (None while the API is open).

    Raises:
        Conflict: a study (ours or a bare Optuna one) already has the name.
        SpecError: the uploaded data set the task reads was deleted meanwhile.
    """
    with session_scope(engine) as session:
        if StudyRecord.find(session, spec.name) is not None:
            raise Conflict(f"study {spec.name!r} already exists")
    try:
        study = optuna.create_study(
            study_name=spec.name, storage=storage, direction=spec.objective.direction
        )
    except optuna.exceptions.DuplicatedStudyError:
        raise Conflict(f"an Optuna study named {spec.name!r} already exists") from None
    try:
        label_study(study, spec, engine=engine)  # objective's name and spec, for the dashboard
        seed_study(study, spec, engine=engine, storage=storage)  # a warm start's seeds, kept
        with session_scope(engine) as session:
            record = StudyRecord.new(spec, created_by=created_by)
            session.add(record)
            session.flush()  # the row refers to its data set from here: no delete removes it
            confirm_dataset(session, record)
            notify_work(session.connection(), spec.name)  # idle workers wake at commit
    except IntegrityError:
        optuna.delete_study(study_name=spec.name, storage=storage)  # leave nothing behind
        check_dataset_exists(engine=engine, spec=spec)  # PostgreSQL: deleted meanwhile
        raise Conflict(f"study {spec.name!r} already exists") from None
    except BaseException:
        optuna.delete_study(study_name=spec.name, storage=storage)
        raise
    return record


def get_study(*, engine: Engine, name: str) -> StudyRecord:
    """The study record called ``name`` (NotFound otherwise)."""
    with session_scope(engine) as session:
        return StudyRecord.find_or_raise(session, name)


def list_studies(*, engine: Engine, offset: int, limit: int) -> tuple[list[StudyRecord], int]:
    """A page of studies, newest first, and the total count."""
    with session_scope(engine) as session:
        total = session.scalar(select(func.count()).select_from(StudyRecord)) or 0
        rows = session.scalars(
            select(StudyRecord).order_by(StudyRecord.id.desc()).offset(offset).limit(limit)
        )
        return list(rows), total


def change_status(*, engine: Engine, name: str, action: str, owner: str | None = None) -> None:
    """Pause, resume or cancel a study, in one conditional UPDATE.

    Concurrent calls on one study each get one coherent answer: the UPDATE applies the
    transition only from a status that allows it, so of two racing pauses one succeeds
    and the other finds the study paused (409); a study deleted meanwhile is a 404.

    Args:
        owner: Only a study created by this key may change (None: any study).

    Raises:
        NotFound: no such study.
        Forbidden: the study was created by another key than ``owner``.
        Conflict: the action does not apply to the study's current status.
    """
    allowed, target = TRANSITIONS[action]
    conditions = [StudyRecord.name == name, StudyRecord.status.in_(allowed)]
    if owner is not None:
        conditions.append(StudyRecord.created_by == owner)
    with connection_scope(engine) as connection:
        changed = connection.execute(
            update(StudyRecord).where(*conditions).values(status=target, updated_at=utcnow())
        ).rowcount
        if changed and target == "running":
            notify_work(connection, name)  # resumed: idle workers wake at commit
    if changed:
        return
    record = get_study(engine=engine, name=name)
    _check_owner(record, owner)
    raise Conflict(f"cannot {action} study {name!r}: it is {record.status}")


def _check_owner(record: StudyRecord, owner: str | None) -> None:
    if owner is not None and record.created_by != owner:
        by = f"key {record.created_by!r}" if record.created_by else "no key (an open API)"
        raise Forbidden(
            f"study {record.name!r} was created by {by}; a submitter acts only on its own "
            "studies (an admin key may act on any)"
        )


def delete_study(
    *, engine: Engine, storage: optuna.storages.RDBStorage, name: str, owner: str | None = None
) -> None:
    """Delete the study record (one conditional DELETE), then its Optuna study and trials.

    Of concurrent deletes exactly one succeeds; the others find no study (404). The study's
    artifacts are detached from it in the same transaction; the caller sweeps them away
    (:func:`cellsearch.service.artifacts.operations.sweep`).

    Raises:
        NotFound: no such study.
        Forbidden: the study was created by another key than ``owner``.
    """
    conditions = [StudyRecord.name == name]
    if owner is not None:
        conditions.append(StudyRecord.created_by == owner)
    with connection_scope(engine) as connection:
        connection.execute(detach(select(StudyRecord.id).where(*conditions)))
        deleted = connection.execute(delete(StudyRecord).where(*conditions)).rowcount
    if not deleted:
        _check_owner(get_study(engine=engine, name=name), owner)
        raise NotFound(f"study {name!r} not found")  # deleted and made again meanwhile
    with contextlib.suppress(KeyError):  # already gone: the record was all that was left
        optuna.delete_study(study_name=name, storage=storage)


def trial_counts(*, engine: Engine, names: Sequence[str]) -> dict[str, TrialCounts]:
    """Trial counts by state (and finished trials by cell) for each named study."""
    if not names:
        return {}
    with connection_scope(engine) as conn:
        return counts_on(conn, names)


def counts_on(conn: Connection, names: Sequence[str]) -> dict[str, TrialCounts]:
    """:func:`trial_counts` on an open connection (one grouped query over Optuna's tables,
    so that a page of studies costs two queries however many trials they hold)."""
    counts = {name: TrialCounts() for name in names}
    by_cell: dict[str, Counter[str]] = {name: Counter() for name in names}
    for group in trial_groups(conn, names):
        c, state, n = counts[group.study_name], group.state.name, group.n
        kind = _text(group.failure_kind)
        counted = state in ("COMPLETE", "PRUNED") or (state == "FAIL" and kind in COUNTED_FAILURES)
        if group.reevaluation and counted:
            c.reevaluated += n  # re-evaluation runs have their own budget
            continue
        _add(c, state, kind, n)
        if counted:
            by_cell[group.study_name][_text(group.cell_type)] += n
    for name in names:
        counts[name].by_cell = dict(sorted(by_cell[name].items()))
    return counts


def _text(value: object) -> str:
    """An attribute's decoded value as the counts key it ("" when unset)."""
    return "" if value is None else str(value)


def _add(c: TrialCounts, state: str, failure_kind: str, n: int) -> None:
    if state == "FAIL":
        if failure_kind in COUNTED_FAILURES:
            c.failed += n
        else:
            c.requeued += n
    elif state in ("RUNNING", "WAITING", "COMPLETE", "PRUNED"):
        setattr(c, state.lower(), getattr(c, state.lower()) + n)


def trial_page(
    *,
    engine: Engine,
    name: str,
    states: Sequence[optuna.trial.TrialState] | None,
    cell_type: str | None,
    offset: int,
    limit: int,
    render: Callable[[TrialPage], bytes],
    markers: MarkerMemo = FRESH,
    cache: MarkerCache[tuple[bytes, bool]] | None = None,
    ids: MarkerCache[array[int]] | None = None,
) -> bytes:
    """A page of a study's trials (by number), filtered by state and cell type, with how
    many pass the filter, as ``render`` writes it; the filter and the page are applied in
    SQL, in one transaction.

    With a ``cache``, a rendered page whose trials have all finished is kept while the
    study's change marker (from ``markers``) stays the same: finished trials never change,
    and the marker changes whenever a trial starts or finishes, which is when a page's
    selection or the count can. Pages holding an unfinished trial (its learning curve
    grows) are read every time. The cache holds bytes, not records: a few objects per
    page for the garbage collector to walk instead of thousands.

    Without a cell type, the count comes from the study's marker (which counts each
    state), so it is as old as the marker (``markers``' age), like the cached pages.
    The cell-type filter costs a grouped query over all the study's trials; with ``ids``,
    the ids it selects among finished trials (a state filter of finished states only) are
    kept under the same marker, so that a new page of that filter reads only its trials.

    Raises:
        NotFound: no such study.
    """
    where = bulk_read.TrialFilter(states=states, cell_type=cell_type)
    with session_scope(engine) as session:
        stored = read_stored(session, engine, name, markers)
        conn, study_id = session.connection(), stored.study_id

        def read() -> tuple[bytes, bool]:
            if ids is not None and _fixed_selection(where):
                # the cell type's selection of finished trials, kept while the study is
                # unchanged (none of them can leave it): each page is then a slice
                key = (stored.database, study_id, _filter_key(where))
                chosen = ids.get(key, stored.marker, selected)
                trials = bulk_read.read_trials_by_id(conn, list(chosen[offset : offset + limit]))
                total = len(chosen)
            elif where.cell_type is None:
                # the marker counts each state: no count over every trial (4.5 ms at
                # 100,000 on SQLite), at the cost of the marker's age
                trials = bulk_read.read_trials(conn, study_id, where, offset=offset, limit=limit)
                total = bulk_read.count_in_marker(stored.trials, where.states)
            else:
                found = bulk_read.read_page(conn, study_id, where, offset=offset, limit=limit)
                trials, total = found
            page = TrialPage([TrialRecord.of(t) for t in trials], total)
            return render(page), page.settled()

        def selected() -> array[int]:
            return array("q", bulk_read.trial_ids(conn, study_id, where))

        if cache is None:
            return read()[0]
        key = (stored.database, stored.record.name, _filter_key(where), offset, limit)
        body, _ = cache.get(key, stored.marker, read, keep=_settled)
        return body


@dataclass(frozen=True)
class TrialPage:
    """A page of trial records and how many trials pass its filter."""

    items: list[TrialRecord]
    total: int

    def settled(self) -> bool:
        """Whether every trial on the page has finished (so none of them changes)."""
        return all(t.state in _FINISHED for t in self.items)


_FINISHED = frozenset(s.name.lower() for s in optuna.trial.TrialState if s.is_finished())


def _settled(rendered: tuple[bytes, bool]) -> bool:
    return rendered[1]


def _fixed_selection(where: bulk_read.TrialFilter) -> bool:
    """Whether the trials ``where`` selects stay selected while the study's marker does: a
    cell type among finished trials (an unfinished trial may still gain its cell type)."""
    finished = where.states is not None and all(s.is_finished() for s in where.states)
    return where.cell_type is not None and finished


def _filter_key(where: bulk_read.TrialFilter) -> tuple[object, ...]:
    states = None if where.states is None else tuple(sorted(s.name for s in where.states))
    return states, where.cell_type


def optuna_study_id(conn: Connection, name: str) -> int:
    """The id of study ``name``'s Optuna study.

    Raises:
        NotFound: the Optuna study is gone (a service record without it reads as absent).
    """
    study_id = bulk_read.find_study_id(conn, name)
    if study_id is None:
        raise NotFound(f"study {name!r} not found")
    return study_id


@dataclass(frozen=True)
class StoredStudy:
    """A study as one transaction read it: its record, its Optuna study's id, and its
    trials' change marker (:func:`~cellsearch.search.optuna_adapter.bulk_read.change_markers`)."""

    record: StudyRecord
    study_id: int  # Optuna's
    database: str  # the key naming the database in the process's caches
    trials: tuple[Any, ...]

    @property
    def marker(self) -> tuple[Any, ...]:
        """What the study's derived data (counts, pages, reports) stays valid for: the
        study's incarnation, its Optuna id and its trials' marker."""
        return (self.record.incarnation, self.study_id, self.trials)


def read_stored(
    session: Session, engine: Engine, name: str, markers: MarkerMemo = FRESH
) -> StoredStudy:
    """Study ``name`` read in ``session``'s transaction, its trials' marker from ``markers``
    (which may reuse a recent one).

    Raises:
        NotFound: no such study (or its Optuna study is gone).
    """
    record = StudyRecord.find_or_raise(session, name)
    conn = session.connection()
    study_id = optuna_study_id(conn, record.name)
    database = database_key(engine)
    return StoredStudy(record, study_id, database, markers.marker(conn, database, study_id))
