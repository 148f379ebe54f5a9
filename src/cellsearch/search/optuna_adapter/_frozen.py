"""Optuna's :class:`~optuna.trial.FrozenTrial` built from its rows, one query per table.

``optuna.load_study(...).get_trials()`` builds an ORM object for every row of every
trial table and decodes each parameter's distribution twice, which took 16 s for 10,000
trials on SQLite. Here each child table (parameters, values, intermediate values, user
and system attributes) is read with one query for the whole selection, taking the
driver's rows in chunks; every distinct distribution is decoded once and each chunk's
JSON attributes in one parse. The trials are the ones Optuna returns: same fields, same
parameter order, datetimes in naive local time as Optuna gives them (converted from the
naive UTC that Optuna 5 stores; Optuna 4 stores local time).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import (
    Connection,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    func,
    literal,
    null,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy import cast as cast_sql
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement

from cellsearch.search.optuna_adapter._tables import (
    DATETIMES_IN_UTC,
    PARAMS,
    STEPS,
    SYSTEM,
    TRIALS,
    USER,
    VALUES,
)

_FINITE = "FINITE"  # the stored name of a finite value (Optuna keeps the others as types)
_SPECIAL = {"INF_POS": float("inf"), "INF_NEG": float("-inf"), "NAN": float("nan")}


def trial_columns() -> Any:
    """The trials table's columns that :func:`build` takes its rows in."""
    t = TRIALS.c
    return select(t.trial_id, t.number, t.state, t.datetime_start, t.datetime_complete)


def running_trial(
    started: dt.datetime, user_attrs: dict[str, Any], *, number: int = -1, trial_id: int = -1
) -> FrozenTrial:
    """A new RUNNING trial that holds nothing but ``user_attrs``: the template that asks
    for one, or (with its number and id) the trial made from it."""
    return FrozenTrial(
        number=number,
        state=TrialState.RUNNING,
        value=None,
        values=None,
        datetime_start=started,
        datetime_complete=None,
        params={},
        distributions={},
        user_attrs=dict(user_attrs),
        system_attrs={},
        intermediate_values={},
        trial_id=trial_id,
    )


def build(conn: Connection, rows: Sequence[Any], chosen: Any) -> list[FrozenTrial]:
    """FrozenTrials of the trial ``rows``; ``chosen``: their ids (a list or a subquery).

    A few listed trials (at most :data:`FEW`, as a running trial's read and most reads of
    Optuna's cache are) have their child rows read in one query (:func:`_few`); more, in
    one query per child table, in chunks.
    """
    if not rows:
        return []
    tables: tuple[Rows, ...]
    if isinstance(chosen, list) and len(chosen) <= FEW:
        parts = _few(conn, chosen)
        tables = ([parts[0]], [parts[1]], [parts[2]], [parts[3]], [parts[4]])
    else:
        tables = _per_table(conn, chosen)
    params, distributions = _params(tables[0])
    values = _values(tables[1])
    steps = _intermediate(tables[2])
    user = _attributes(tables[3])
    system = _attributes(tables[4])
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


FEW = 100  # at most this many listed trials are read in one query (see build)
Rows = Iterable[Sequence[Any]]  # a table's rows, in chunks


def among(dialect: str, column: Any, ids: Any) -> ColumnElement[bool]:
    """``column IN ids``; ``ids`` a list or a subquery. On PostgreSQL a list is one array
    parameter, unnested (``IN (SELECT unnest(...))``): the statement's text is the same for
    any number of ids, where an ``IN`` list of a few hundred ids cost more of the client's
    time (SQLAlchemy's and psycopg's handling of each parameter in the text) than the read
    itself. Not ``= ANY(...)``: in a prepared statement's generic plan the server cannot
    hash the array, and compared each row with every id (15 ms, not 3, to filter the
    attributes of 256 trials)."""
    if dialect == "postgresql" and isinstance(ids, list):
        return column.in_(_unnested(literal(ids, postgresql.ARRAY(Integer))))
    return column.in_(ids)


def _unnested(array: Any) -> Any:
    return select(func.unnest(array).column_valued())


def _per_table(conn: Connection, chosen: Any) -> tuple[Rows, ...]:
    """Each child table's rows of the ``chosen`` trials, each read with one query, in the
    shapes the builders take."""
    p, v, s = PARAMS.c, VALUES.c, STEPS.c
    params = select(p.trial_id, p.param_id, p.param_name, p.param_value, p.distribution_json)
    values = select(v.trial_id, v.objective, v.value, stored_name(v.value_type))
    steps = select(s.trial_id, s.step, s.intermediate_value, stored_name(s.intermediate_value_type))

    def attributes(table: Any) -> Any:
        return select(table.c.trial_id, table.c.key, table.c.value_json)

    def of(table: Any) -> ColumnElement[bool]:
        return among(conn.dialect.name, table.c.trial_id, chosen)

    queries = (
        params.where(of(PARAMS)),
        values.where(of(VALUES)),
        steps.where(of(STEPS)),
        attributes(USER).where(of(USER)),
        attributes(SYSTEM).where(of(SYSTEM)),
    )
    return tuple(chunks(conn, q) for q in queries)


def _few(conn: Connection, trial_ids: list[int]) -> list[list[Sequence[Any]]]:
    """The child rows of a few trials, read in one ``UNION ALL`` query (one round trip
    instead of five), split by table into the shapes the builders take."""
    parts: list[list[Sequence[Any]]] = [[], [], [], [], []]
    few = _FEW[conn.dialect.name == "postgresql"]
    for part, trial_id, number, name, value, text in conn.execute(few, {"ids": trial_ids}):
        if part == 0:
            parts[0].append((trial_id, number, name, value, text))
        elif part in (1, 2):
            parts[part].append((trial_id, number, value, name))
        else:
            parts[part].append((trial_id, name, text))
    return parts


def _union_of_children(postgres: bool) -> Any:
    """The child tables of listed trials (the parameter ``ids``) as one query: (part,
    trial id, an integer, a name, a number, a text), ``part`` 0-4 being parameters,
    values, intermediate values, user and system attributes. On PostgreSQL the ids are
    one array parameter (see :func:`among`)."""

    def listed(column: Any) -> Any:
        if postgres:
            return column.in_(_unnested(bindparam("ids", type_=postgresql.ARRAY(Integer))))
        return column.in_(bindparam("ids", expanding=True))

    def branch(part: int, table: Any, number: Any, name: Any, value: Any, text: Any) -> Any:
        return select(
            literal(part, Integer), table.c.trial_id, _typed(number, Integer),
            _typed(name, String), _typed(value, Float), _typed(text, Text),
        ).where(listed(table.c.trial_id))  # fmt: skip

    p, v, s, u, y = PARAMS.c, VALUES.c, STEPS.c, USER.c, SYSTEM.c
    return union_all(
        branch(0, PARAMS, p.param_id, p.param_name, p.param_value, p.distribution_json),
        branch(1, VALUES, v.objective, v.value_type, v.value, None),
        branch(2, STEPS, s.step, s.intermediate_value_type, s.intermediate_value, None),
        branch(3, USER, None, u.key, None, u.value_json),
        branch(4, SYSTEM, None, y.key, None, y.value_json),
    )


def _typed(column: Any, type_: Any) -> Any:
    """A column cast to ``type_`` on the server (an enum read as its stored name), or a
    typed NULL where a branch has no such column."""
    return cast_sql(null() if column is None else column, type_)


def _params(
    tables: Rows,
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, BaseDistribution]]]:
    """Parameters (external values) and distributions per trial, in Optuna's order (each
    trial's by parameter id).

    The rows are read unordered and each trial's few put in order here: an ``ORDER BY``
    over the whole selection made the server sort every row of it, distributions' JSON
    included (a sort on disk at 100,000 trials). They mostly arrive in id order already.
    """
    decoded: dict[str, BaseDistribution] = {}
    names: dict[str, str] = {}  # one string object per name, not one per row
    rows_of: dict[int, list[tuple[int, str, float, BaseDistribution]]] = {}
    for rows in tables:
        for trial_id, param_id, name, internal, text in rows:
            distribution = decoded.get(text)
            if distribution is None:
                distribution = decoded[text] = json_to_distribution(text)
            row = (param_id, names.setdefault(name, name), internal, distribution)
            rows_of.setdefault(trial_id, []).append(row)
    params: dict[int, dict[str, Any]] = {}
    distributions: dict[int, dict[str, BaseDistribution]] = {}
    for trial_id, found in rows_of.items():
        if any(a[0] > b[0] for a, b in itertools.pairwise(found)):
            found.sort()
        params[trial_id] = {n: d.to_external_repr(v) for _, n, v, d in found}
        distributions[trial_id] = {n: d for _, n, _, d in found}
    return params, distributions


def _values(tables: Rows) -> dict[int, list[float]]:
    """Objective values per trial, by objective."""
    found: dict[int, dict[int, float]] = {}
    for rows in tables:
        for trial_id, objective, value, kind in rows:
            found.setdefault(trial_id, {})[objective] = value if kind == _FINITE else _SPECIAL[kind]
    out: dict[int, list[float]] = {}
    for trial_id, by_objective in found.items():
        values: list[float] = [0] * len(by_objective)
        for objective, value in by_objective.items():
            values[objective] = value
        out[trial_id] = values
    return out


def _intermediate(tables: Rows) -> dict[int, dict[int, float]]:
    """Intermediate values per trial, keyed by step (NaN and infinities restored)."""
    out: dict[int, dict[int, float]] = {}
    last, steps = None, {}
    for rows in tables:
        for trial_id, step, value, kind in rows:
            if trial_id != last:  # rows mostly come grouped by trial (the index's order)
                steps = out.setdefault(trial_id, {})
                last = trial_id
            steps[step] = value if kind == _FINITE else _SPECIAL[kind]
    return out


def _attributes(tables: Rows) -> dict[int, dict[str, Any]]:
    """User or system attributes per trial, the JSON values of each chunk decoded at once."""
    keys: dict[str, str] = {}
    out: dict[int, dict[str, Any]] = {}
    for rows in tables:
        decoded = _json_many(row[2] for row in rows)
        for (trial_id, key, _), value in zip(rows, decoded, strict=True):
            out.setdefault(trial_id, {})[keys.setdefault(key, key)] = value
    return out


def _json_many(texts: Iterable[str]) -> list[Any]:
    """``[json.loads(t) for t in texts]`` in one parse (as a JSON array)."""
    return list(json.loads("[" + ",".join(texts) + "]"))


def chunks(conn: Connection, query: Any, size: int = 20_000) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` as the driver returns them (ints, floats, strings), in chunks.

    SQLAlchemy's row objects and type processing cost several times the driver's own
    fetch on the child tables' hundreds of thousands of rows; these columns need neither
    (enums are read as their names, see :func:`stored_name`). Chunks bound the memory
    held by raw rows at once.
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


def stored_name(column: Any) -> Any:
    """An enum column read as its stored name (a string), without per-row decoding."""
    return type_coerce(column, String)


def _local(stored: dt.datetime | None) -> dt.datetime | None:
    """Optuna's conversion: stored naive UTC to naive local time (Optuna 4: as stored)."""
    if stored is None or not DATETIMES_IN_UTC:
        return stored
    return stored.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


_FEW = (_union_of_children(postgres=False), _union_of_children(postgres=True))
