"""Read a study's trials in bulk: one set-based query per table of Optuna's schema.

``optuna.load_study(...).get_trials()`` builds an ORM object for every row of every
trial table and decodes each parameter's distribution twice, which took 16 s for 10,000
trials on SQLite. The reader here selects the trials it wants once (filtered by state
and by cell type, in SQL, and paginated), then reads each child table (parameters,
values, intermediate values, user and system attributes) with one query for the whole
selection, taking the driver's rows in chunks; it decodes every distinct distribution
once and each chunk's JSON attributes in one parse, and builds the same
:class:`~optuna.trial.FrozenTrial` objects Optuna returns: same order (by trial id,
which within a study is the order of numbers), same fields, datetimes converted from
the stored naive UTC to naive local time as Optuna does.
:class:`~cellsearch.search.record.TrialRecord` is built from them by its own
constructor.

The cell-type filter follows :func:`cellsearch.search.record.cell_of`: a trial's
sampled ``cell_type`` parameter (a categorical stored as the index of its choice,
decoded here through its distribution) wins; the ``cell_type`` user attribute counts
only for a trial without that parameter.

Optuna's tables are read, never written, through Optuna's own table definitions.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    json_to_distribution,
)
from optuna.storages._rdb import models
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import (
    Connection,
    String,
    and_,
    case,
    exists,
    false,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from cellsearch.search.record import CELL_PARAM, Attr, cell_of

_STUDIES = models.StudyModel.__table__
_DIRECTIONS = models.StudyDirectionModel.__table__
_TRIALS = models.TrialModel.__table__
_PARAMS = models.TrialParamModel.__table__
_VALUES = models.TrialValueModel.__table__
_STEPS = models.TrialIntermediateValueModel.__table__
_USER = models.TrialUserAttributeModel.__table__
_SYSTEM = models.TrialSystemAttributeModel.__table__
_CELL_PARAM = _PARAMS.alias("cell_param")
_CELL_ATTR = _USER.alias("cell_attr")
_WITH_CELL = _TRIALS.outerjoin(
    _CELL_PARAM,
    and_(_CELL_PARAM.c.trial_id == _TRIALS.c.trial_id, _CELL_PARAM.c.param_name == CELL_PARAM),
).outerjoin(
    _CELL_ATTR,
    and_(_CELL_ATTR.c.trial_id == _TRIALS.c.trial_id, _CELL_ATTR.c.key == Attr.CELL_TYPE.value),
)  # unique (trial_id, param_name) and (trial_id, key): one row per trial
_VALUE_TYPE = models.TrialValueModel.TrialValueType
_FINITE = "FINITE"  # the stored name of a finite value (Optuna keeps the others as types)
_SPECIAL = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


@dataclass(frozen=True)
class TrialFilter:
    """Which trials of a study to read: any of ``states`` (None: all) and one cell type."""

    states: Collection[TrialState] | None = None
    cell_type: str | None = None


ALL = TrialFilter()


def find_study_id(conn: Connection, name: str) -> int | None:
    """The id of Optuna's study called ``name``, or None."""
    return conn.scalar(select(_STUDIES.c.study_id).where(_STUDIES.c.study_name == name))


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
    selection = _select(conn, study_id, where, count=False)
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
    selection = _select(conn, study_id, where, count=True)
    assert selection.total is not None
    trials = _read(conn, selection, offset, limit) if limit != 0 else []
    return trials, selection.total


def trial_ids(conn: Connection, study_id: int, where: TrialFilter = ALL) -> list[int]:
    """The ids of the study's trials that pass ``where``, by number (one query besides the
    cell type's grouped one)."""
    selection = _select(conn, study_id, where, count=False)
    query = select(_TRIALS.c.trial_id).select_from(selection.source).where(*selection.conditions)
    return list(conn.scalars(query.order_by(_TRIALS.c.trial_id)))


def read_trials_by_id(conn: Connection, trial_ids: Sequence[int]) -> list[FrozenTrial]:
    """The trials with these ids (any study), by trial id."""
    query = _trial_columns().where(_TRIALS.c.trial_id.in_(trial_ids))
    rows = conn.execute(query.order_by(_TRIALS.c.trial_id)).all()
    return _build(conn, rows, list(trial_ids))


def best_trial(conn: Connection, study_id: int) -> FrozenTrial | None:
    """The study's best COMPLETE search trial on its first objective (lowest number among
    ties); seed re-evaluation runs, which repeat a search trial's configuration, are left out.

    One query finds it, as Optuna's ``get_best_trial`` does, with infinities ranked by
    their stored type; only that trial is read. Like ``Study.best_trial`` on a study
    without constraints (cellsearch sets none).
    """
    direction = conn.scalar(
        select(_DIRECTIONS.c.direction).where(
            _DIRECTIONS.c.study_id == study_id, _DIRECTIONS.c.objective == 0
        )
    )
    rank = case(
        (_VALUES.c.value_type == _VALUE_TYPE.INF_NEG, -1),
        (_VALUES.c.value_type == _VALUE_TYPE.FINITE, 0),
        else_=1,
    )
    maximize = direction == StudyDirection.MAXIMIZE
    order = (rank.desc(), _VALUES.c.value.desc()) if maximize else (rank, _VALUES.c.value)
    query = (
        select(_TRIALS.c.trial_id)
        .join(_VALUES, _VALUES.c.trial_id == _TRIALS.c.trial_id)
        .where(_TRIALS.c.study_id == study_id, _TRIALS.c.state == TrialState.COMPLETE)
        .where(_VALUES.c.objective == 0)
        .where(
            ~exists().where(
                _USER.c.trial_id == _TRIALS.c.trial_id, _USER.c.key == Attr.REEVALUATION_OF
            )
        )
        .order_by(*order, _TRIALS.c.trial_id)
        .limit(1)
    )
    trial_id = conn.scalar(query)
    return None if trial_id is None else read_trials_by_id(conn, [trial_id])[0]


def find_study_ids(conn: Connection, names: Sequence[str]) -> dict[str, int]:
    """The ids of Optuna's studies with these names (names without a study are left out)."""
    query = select(_STUDIES.c.study_name, _STUDIES.c.study_id).where(
        _STUDIES.c.study_name.in_(list(names))
    )
    return {name: study_id for name, study_id in conn.execute(query)}


def change_markers(conn: Connection, study_ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    """A cheap fingerprint of each study's trials: changes when a trial starts or finishes.

    Per state: how many trials, and the last completion time; one grouped query on the
    trials table alone, for all the studies. Attribute writes on a running trial do not
    change it (cellsearch writes a trial's attributes before its outcome).
    """
    t = _TRIALS.c
    query = (
        select(t.study_id, _name(t.state), func.count(), func.max(t.datetime_complete))
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


def _trial_columns() -> Any:
    t = _TRIALS.c
    return select(t.trial_id, t.number, t.state, t.datetime_start, t.datetime_complete)


@dataclass(frozen=True)
class _Selection:
    """The trials that pass a filter: the tables to read them from, the conditions, and
    how many there are (when asked for)."""

    source: FromClause
    conditions: list[ColumnElement[bool]]
    total: int | None


def _select(conn: Connection, study_id: int, where: TrialFilter, *, count: bool) -> _Selection:
    """Resolve ``where`` into SQL; the cell type through one grouped query (see
    :func:`_cell_condition`), which also gives the count."""
    conditions: list[ColumnElement[bool]] = [_TRIALS.c.study_id == study_id]
    if where.states is not None:
        conditions.append(_TRIALS.c.state.in_(list(where.states)))
    if where.cell_type is not None:
        condition, total = _cell_condition(conn, conditions, where.cell_type)
        return _Selection(_WITH_CELL, [*conditions, condition], total)
    counted = select(func.count()).select_from(_TRIALS).where(*conditions)
    return _Selection(_TRIALS, conditions, int(conn.scalar(counted) or 0) if count else None)


def _read(
    conn: Connection, selection: _Selection, offset: int, limit: int | None
) -> list[FrozenTrial]:
    query = _trial_columns().select_from(selection.source).where(*selection.conditions)
    query = query.order_by(_TRIALS.c.trial_id)
    if offset or limit is not None:
        rows = conn.execute(query.offset(offset).limit(limit)).all()
        chosen: Any = [row.trial_id for row in rows]
    else:
        rows = conn.execute(query).all()
        chosen = select(_TRIALS.c.trial_id).select_from(selection.source)
        chosen = chosen.where(*selection.conditions)
    return _build(conn, rows, chosen)


def _cell_condition(
    conn: Connection, conditions: list[ColumnElement[bool]], cell: str
) -> tuple[ColumnElement[bool], int]:
    """The trials whose :func:`~cellsearch.search.record.cell_of` is ``cell``, and how many.

    One grouped query over the trials (each joined with its cell parameter and its cell
    attribute: at most one of each) returns every distinct (stored distribution, stored
    value, stored attribute) with its count: a handful. Each is decoded and passed to
    :func:`~cellsearch.search.record.cell_of` itself; the condition then matches the
    stored forms of those that name ``cell`` exactly.
    """
    p, a = _CELL_PARAM.c, _CELL_ATTR.c
    groups = conn.execute(
        select(p.distribution_json, p.param_value, a.value_json, func.count())
        .select_from(_WITH_CELL)
        .where(*conditions)
        .group_by(p.distribution_json, p.param_value, a.value_json)
    ).all()
    matched: list[ColumnElement[bool]] = []
    total = 0
    for distribution, internal, attr, n in groups:
        if _cell_of_stored(distribution, internal, attr) != cell:
            continue
        total += n
        if distribution is not None:  # the parameter decides, whatever the attribute
            matched.append(and_(p.distribution_json == distribution, p.param_value == internal))
        else:
            matched.append(and_(p.trial_id.is_(None), a.value_json == attr))
    return or_(false(), *matched), total


def _cell_of_stored(distribution: str | None, internal: float | None, attr: str | None) -> Any:
    """:func:`~cellsearch.search.record.cell_of` of a trial with these stored values."""
    params, attrs = {}, {}
    if distribution is not None and internal is not None:
        params[CELL_PARAM] = _decoded(distribution).to_external_repr(internal)
    if attr is not None:
        attrs[Attr.CELL_TYPE.value] = json.loads(attr)
    trial = FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None, datetime_start=None,
        datetime_complete=None, params=params, distributions={}, user_attrs=attrs,
        system_attrs={}, intermediate_values={}, trial_id=0,
    )  # fmt: skip
    return cell_of(trial)


@functools.lru_cache(maxsize=256)
def _decoded(distribution_json: str) -> BaseDistribution:
    """A stored distribution, decoded (cached: a study holds a handful)."""
    return json_to_distribution(distribution_json)


def _build(conn: Connection, rows: Sequence[Any], chosen: Any) -> list[FrozenTrial]:
    """FrozenTrials of the trial ``rows``; ``chosen``: their ids (a list or a subquery)."""
    if not rows:
        return []
    params, distributions = _params(conn, chosen)
    values = _values(conn, chosen)
    steps = _intermediate(conn, chosen)
    user = _attributes(conn, _USER, chosen)
    system = _attributes(conn, _SYSTEM, chosen)
    trials = []
    for trial_id, number, state, started, completed in rows:
        trials.append(
            FrozenTrial(
                number=number,
                state=state,
                value=None,
                values=values.get(trial_id),
                datetime_start=_local(started),
                datetime_complete=_local(completed),
                params=params.get(trial_id, {}),
                distributions=distributions.get(trial_id, {}),
                user_attrs=user.get(trial_id, {}),
                system_attrs=system.get(trial_id, {}),
                intermediate_values=steps.get(trial_id, {}),
                trial_id=trial_id,
            )
        )
    return trials


def _of(table: Any, chosen: Any) -> ColumnElement[bool]:
    return table.c.trial_id.in_(chosen)


def _params(
    conn: Connection, chosen: Any
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, BaseDistribution]]]:
    """Parameters (external values) and distributions per trial, in Optuna's order."""
    p = _PARAMS.c
    query = select(p.trial_id, p.param_name, p.param_value, p.distribution_json)
    query = query.where(_of(_PARAMS, chosen)).order_by(p.param_id)
    decoded: dict[str, BaseDistribution] = {}
    names: dict[str, str] = {}  # one string object per name, not one per row
    params: dict[int, dict[str, Any]] = {}
    distributions: dict[int, dict[str, BaseDistribution]] = {}
    for rows in _chunks(conn, query):
        for trial_id, name, internal, text in rows:
            distribution = decoded.get(text)
            if distribution is None:
                distribution = decoded[text] = json_to_distribution(text)
            name = names.setdefault(name, name)
            params.setdefault(trial_id, {})[name] = distribution.to_external_repr(internal)
            distributions.setdefault(trial_id, {})[name] = distribution
    return params, distributions


def _values(conn: Connection, chosen: Any) -> dict[int, list[float]]:
    """Objective values per trial, by objective."""
    v = _VALUES.c
    query = select(v.trial_id, v.objective, v.value, _name(v.value_type))
    found: dict[int, dict[int, float]] = {}
    for rows in _chunks(conn, query.where(_of(_VALUES, chosen))):
        for trial_id, objective, value, kind in rows:
            found.setdefault(trial_id, {})[objective] = value if kind == _FINITE else _SPECIAL[kind]
    out: dict[int, list[float]] = {}
    for trial_id, by_objective in found.items():
        values: list[float] = [0] * len(by_objective)
        for objective, value in by_objective.items():
            values[objective] = value
        out[trial_id] = values
    return out


def _intermediate(conn: Connection, chosen: Any) -> dict[int, dict[int, float]]:
    """Intermediate values per trial, keyed by step (NaN and infinities restored)."""
    s = _STEPS.c
    query = select(s.trial_id, s.step, s.intermediate_value, _name(s.intermediate_value_type))
    out: dict[int, dict[int, float]] = {}
    last, steps = None, {}
    for rows in _chunks(conn, query.where(_of(_STEPS, chosen))):
        for trial_id, step, value, kind in rows:
            if trial_id != last:  # rows mostly come grouped by trial (the index's order)
                steps = out.setdefault(trial_id, {})
                last = trial_id
            steps[step] = value if kind == _FINITE else _SPECIAL[kind]
    return out


def _attributes(conn: Connection, table: Any, chosen: Any) -> dict[int, dict[str, Any]]:
    """User or system attributes per trial, the JSON values of each chunk decoded at once."""
    query = select(table.c.trial_id, table.c.key, table.c.value_json).where(_of(table, chosen))
    keys: dict[str, str] = {}
    out: dict[int, dict[str, Any]] = {}
    for rows in _chunks(conn, query):
        decoded = _json_many(row[2] for row in rows)
        for (trial_id, key, _), value in zip(rows, decoded, strict=True):
            out.setdefault(trial_id, {})[keys.setdefault(key, key)] = value
    return out


def _json_many(texts: Iterable[str]) -> list[Any]:
    """``[json.loads(t) for t in texts]`` in one parse (as a JSON array)."""
    return list(json.loads("[" + ",".join(texts) + "]"))


def _chunks(conn: Connection, query: Any, size: int = 20_000) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` as the driver returns them (ints, floats, strings), in chunks.

    SQLAlchemy's row objects and type processing cost several times the driver's own
    fetch on the child tables' hundreds of thousands of rows; these columns need neither
    (enums are read as their names, see :func:`_name`). Chunks bound the memory held by
    raw rows at once.
    """
    result = conn.execute(query)
    try:
        cursor = result.cursor
        if cursor is None:  # pragma: no cover - a result SQLAlchemy already consumed
            yield [tuple(row) for row in result]
            return
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        result.close()


def _name(column: Any) -> Any:
    """An enum column read as its stored name (a string), without per-row decoding."""
    return type_coerce(column, String)


def _local(stored: dt.datetime | None) -> dt.datetime | None:
    """Optuna's conversion: stored naive UTC to naive local time."""
    if stored is None:
        return None
    return stored.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)
