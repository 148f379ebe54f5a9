"""Read a study's trials in bulk: one set-based query per table of Optuna's schema.

The reader selects the trials it wants once (filtered by state and by cell type, in
SQL, and paginated: :mod:`._selection`), then reads each child table with one query for
the whole selection (:mod:`._frozen`), and returns the same
:class:`~optuna.trial.FrozenTrial` objects Optuna returns, in the same order (by trial
id, which within a study is the order of numbers).
:class:`~cellsearch.search.record.TrialRecord` is built from them by its own constructor.

Optuna's tables are read, never written, through Optuna's own table definitions. Every
function takes an open connection to the database that holds them, so a caller reads
its own tables and Optuna's in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Connection, case, exists, func, select

from cellsearch.search.optuna_adapter._frozen import build, stored_name, trial_columns
from cellsearch.search.optuna_adapter._selection import ALL, Selection, TrialFilter, select_trials
from cellsearch.search.optuna_adapter._tables import (
    DIRECTIONS,
    STUDIES,
    TRIALS,
    USER,
    VALUE_TYPE,
    VALUES,
)
from cellsearch.search.record import Attr

__all__ = [
    "ALL",
    "TrialFilter",
    "best_trial",
    "change_markers",
    "count_in_marker",
    "count_trials",
    "find_study_id",
    "find_study_ids",
    "find_trial",
    "read_page",
    "read_trials",
    "read_trials_by_id",
    "trial_ids",
]


def find_study_id(conn: Connection, name: str) -> int | None:
    """The id of Optuna's study called ``name``, or None."""
    return conn.scalar(select(STUDIES.c.study_id).where(STUDIES.c.study_name == name))


def find_study_ids(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The ids of Optuna's studies with these names (names without a study are left out)."""
    query = select(STUDIES.c.study_name, STUDIES.c.study_id).where(
        STUDIES.c.study_name.in_(list(names))
    )
    return {name: study_id for name, study_id in conn.execute(query)}


def count_trials(conn: Connection, study_id: int, where: TrialFilter = ALL) -> int:
    """How many trials of the study pass ``where`` (one aggregate query)."""
    return read_page(conn, study_id, where, limit=0)[1]


def read_trials(
    conn: Connection,
    study_id: int,
    where: TrialFilter = ALL,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> list[FrozenTrial]:
    """The study's trials that pass ``where``, by number, from ``offset`` (at most ``limit``).

    With the defaults this equals ``optuna.load_study(...).get_trials()`` of the study.
    """
    selection = select_trials(conn, study_id, where, count=False)
    return _read(conn, selection, offset, limit)


def read_page(
    conn: Connection,
    study_id: int,
    where: TrialFilter = ALL,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[FrozenTrial], int]:
    """:func:`read_trials`, and how many trials pass ``where`` in all."""
    selection = select_trials(conn, study_id, where, count=True)
    assert selection.total is not None
    trials = _read(conn, selection, offset, limit) if limit != 0 else []
    return trials, selection.total


def trial_ids(conn: Connection, study_id: int, where: TrialFilter = ALL) -> list[int]:
    """The ids of the study's trials that pass ``where``, by number (one query besides the
    cell type's grouped one)."""
    selection = select_trials(conn, study_id, where, count=False)
    query = select(TRIALS.c.trial_id).select_from(selection.source).where(*selection.conditions)
    return list(conn.scalars(query.order_by(TRIALS.c.trial_id)))


def read_trials_by_id(conn: Connection, trial_ids: Sequence[int]) -> list[FrozenTrial]:
    """The trials with these ids (any study), by trial id."""
    query = trial_columns().where(TRIALS.c.trial_id.in_(trial_ids))
    rows = conn.execute(query.order_by(TRIALS.c.trial_id)).all()
    return build(conn, rows, list(trial_ids))


def find_trial(conn: Connection, study_id: int, number: int) -> FrozenTrial | None:
    """The study's trial with ``number``, or None."""
    query = select(TRIALS.c.trial_id).where(
        TRIALS.c.study_id == study_id, TRIALS.c.number == number
    )
    trial_id = conn.scalar(query)
    return None if trial_id is None else read_trials_by_id(conn, [trial_id])[0]


def best_trial(conn: Connection, study_id: int) -> FrozenTrial | None:
    """The study's best COMPLETE search trial on its first objective (lowest number among
    ties); seed re-evaluation runs, which repeat a search trial's configuration, are left out.

    One query finds it, as Optuna's ``get_best_trial`` does, with infinities ranked by
    their stored type; only that trial is read. Like ``Study.best_trial`` on a study
    without constraints (cellsearch sets none).
    """
    direction = conn.scalar(
        select(DIRECTIONS.c.direction).where(
            DIRECTIONS.c.study_id == study_id, DIRECTIONS.c.objective == 0
        )
    )
    v = VALUES.c
    rank = case(
        (v.value_type == VALUE_TYPE.INF_NEG, -1),
        (v.value_type == VALUE_TYPE.FINITE, 0),
        else_=1,
    )
    maximize = direction == StudyDirection.MAXIMIZE
    order = (rank.desc(), v.value.desc()) if maximize else (rank, v.value)
    query = (
        select(TRIALS.c.trial_id)
        .join(VALUES, v.trial_id == TRIALS.c.trial_id)
        .where(TRIALS.c.study_id == study_id, TRIALS.c.state == TrialState.COMPLETE)
        .where(v.objective == 0)
        .where(
            ~exists().where(
                USER.c.trial_id == TRIALS.c.trial_id, USER.c.key == Attr.REEVALUATION_OF
            )
        )
        .order_by(*order, TRIALS.c.trial_id)
        .limit(1)
    )
    trial_id = conn.scalar(query)
    return None if trial_id is None else read_trials_by_id(conn, [trial_id])[0]


def change_markers(conn: Connection, study_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """A cheap fingerprint of each study's trials: changes when a trial starts or finishes.

    Per state: how many trials, and the last completion time; one grouped query on the
    trials table alone, for all the studies. Attribute writes on a running trial do not
    change it (cellsearch writes a trial's attributes before its outcome).
    """
    t = TRIALS.c
    query = (
        select(t.study_id, stored_name(t.state), func.count(), func.max(t.datetime_complete))
        .where(t.study_id.in_(list(study_ids)))
        .group_by(t.study_id, t.state)
    )
    found: dict[int, list[tuple[str, int, str]]] = {study_id: [] for study_id in study_ids}
    for study_id, state, n, last in conn.execute(query):
        found[study_id].append((state, n, str(last)))
    return {study_id: tuple(sorted(rows)) for study_id, rows in found.items()}


def count_in_marker(marker: tuple[Any, ...], states: Collection[TrialState] | None) -> int:
    """How many trials in ``states`` (None: all) a study's :func:`change_markers` marker
    counts: a count that needs no query (the marker holds the count of each state)."""
    names = None if states is None else {state.name for state in states}
    return sum(n for state, n, _last in marker if names is None or state in names)


def _read(
    conn: Connection, selection: Selection, offset: int, limit: int | None
) -> list[FrozenTrial]:
    query = trial_columns().select_from(selection.source).where(*selection.conditions)
    query = query.order_by(TRIALS.c.trial_id)
    if offset or limit is not None:
        rows = conn.execute(query.offset(offset).limit(limit)).all()
        chosen: Any = [row.trial_id for row in rows]
    else:
        rows = conn.execute(query).all()
        chosen = select(TRIALS.c.trial_id).select_from(selection.source)
        chosen = chosen.where(*selection.conditions)
    return build(conn, rows, chosen)
