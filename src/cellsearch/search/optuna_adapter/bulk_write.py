"""Write a whole study into Optuna's tables: a few multi-row statements, in the caller's
transaction.

``optuna.copy_study`` (and ``Study.add_trials``) write trial by trial, each in its own
transaction: 312 s for 10,000 trials on SQLite (benchmarks/REPORT.md). A study that
travels (:mod:`cellsearch.service.travel`) is written here instead: its ``studies`` row,
directions and study attributes, then each trial table with one ``executemany`` for the
whole study, through Optuna's own table definitions, on the caller's open connection, so
that the caller's own rows and Optuna's are committed (or rolled back) together.

What is written is what Optuna writes for the same objects: trial numbers as given (a
study's trials are numbered 0..n-1), parameters in their order with their distributions'
JSON and internal values, values and intermediate values with their stored kind (finite,
infinities, NaN), attributes as JSON, and trial datetimes in the stored form of the
installed Optuna (naive UTC from 5.0, naive local time before; ``FrozenTrial`` holds naive
local time). :func:`read_study` reads back what :func:`insert_study` writes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.distributions import BaseDistribution, distribution_to_json
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial
from sqlalchemy import Connection, Enum, Float, insert, select

from cellsearch.search.optuna_adapter._tables import (
    DATETIMES_IN_UTC,
    DIRECTIONS,
    PARAMS,
    STEPS,
    STUDIES,
    STUDY_SYSTEM,
    STUDY_USER,
    SYSTEM,
    TRIALS,
    USER,
    VALUES,
    models,
)

__all__ = [
    "STORED_IN_UTC",
    "TABLES",
    "StudyRows",
    "insert_study",
    "insert_trials",
    "read_study",
    "stored_datetime",
    "study_names",
]

STORED_IN_UTC = DATETIMES_IN_UTC
"""Whether the installed Optuna stores trial datetimes as naive UTC (else naive local)."""

_STUDY_TABLES = (STUDIES, DIRECTIONS, STUDY_USER, STUDY_SYSTEM)
_TRIAL_TABLES = (TRIALS, PARAMS, VALUES, STEPS, USER, SYSTEM)
TABLES = tuple(t.name for t in _STUDY_TABLES + _TRIAL_TABLES)
"""The names of the tables a study's rows live in (what a copy of a study must hold)."""
_CHUNK = 20_000  # rows per executemany: bounds the memory the rows of one call take


@dataclass(frozen=True)
class StudyRows:
    """A study's own rows: its name, objective directions and study attributes."""

    name: str
    directions: tuple[StudyDirection, ...]
    user_attrs: dict[str, Any] = field(default_factory=dict)
    system_attrs: dict[str, Any] = field(default_factory=dict)


def read_study(conn: Connection, study_id: int) -> StudyRows:
    """The rows of study ``study_id`` (its trials are read with :mod:`.bulk_read`).

    Raises:
        LookupError: no study has that id.
    """
    name = conn.scalar(select(STUDIES.c.study_name).where(STUDIES.c.study_id == study_id))
    if name is None:
        raise LookupError(f"no Optuna study with id {study_id}")
    d = DIRECTIONS.c
    found = conn.execute(
        select(d.objective, d.direction).where(d.study_id == study_id).order_by(d.objective)
    ).all()
    return StudyRows(
        name=name,
        directions=tuple(direction for _, direction in found),
        user_attrs=_study_attrs(conn, STUDY_USER, study_id),
        system_attrs=_study_attrs(conn, STUDY_SYSTEM, study_id),
    )


def study_names(conn: Connection) -> list[str]:
    """The names of every study the database holds."""
    return list(conn.scalars(select(STUDIES.c.study_name).order_by(STUDIES.c.study_id)))


def _study_attrs(conn: Connection, table: Any, study_id: int) -> dict[str, Any]:
    query = select(table.c.key, table.c.value_json).where(table.c.study_id == study_id)
    return {key: json.loads(text) for key, text in conn.execute(query)}


def insert_study(conn: Connection, rows: StudyRows) -> int:
    """Write a new study's rows; return its id.

    Raises:
        sqlalchemy.exc.IntegrityError: a study has the name (Optuna's unique key).
    """
    conn.execute(insert(STUDIES).values(study_name=rows.name))
    study_id = int(
        conn.scalar(select(STUDIES.c.study_id).where(STUDIES.c.study_name == rows.name)) or 0
    )
    directions = [
        {"study_id": study_id, "objective": i, "direction": d}
        for i, d in enumerate(rows.directions)
    ]
    conn.execute(insert(DIRECTIONS), directions)
    for table, attrs in ((STUDY_USER, rows.user_attrs), (STUDY_SYSTEM, rows.system_attrs)):
        found = [
            {"study_id": study_id, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()
        ]
        if found:
            conn.execute(insert(table), found)
    return study_id


def insert_trials(conn: Connection, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """Write ``trials`` (numbered 0..n-1, in any order) into study ``study_id``, which has
    none yet; each trial's number is kept, its id is the database's."""
    ordered = sorted(trials, key=lambda t: t.number)
    if [t.number for t in ordered] != list(range(len(ordered))):
        raise ValueError("a study's trials are numbered 0..n-1, each number once")
    columns = ("number", "study_id", "state", "datetime_start", "datetime_complete")
    _execute(conn, TRIALS, columns, (_trial_row(study_id, t) for t in ordered))
    t = TRIALS.c
    found = conn.execute(select(t.number, t.trial_id).where(t.study_id == study_id))
    ids: dict[int, int] = {number: trial_id for number, trial_id in found}
    by_id = [(ids[trial.number], trial) for trial in ordered]
    _execute(conn, PARAMS, _PARAM_COLUMNS, _param_rows(by_id))
    _execute(conn, VALUES, ("trial_id", "objective", "value", "value_type"), _value_rows(by_id))
    _execute(conn, STEPS, _STEP_COLUMNS, _step_rows(by_id))
    _execute(conn, USER, _ATTR_COLUMNS, _attr_rows(by_id, system=False))
    _execute(conn, SYSTEM, _ATTR_COLUMNS, _attr_rows(by_id, system=True))


_PARAM_COLUMNS = ("trial_id", "param_name", "param_value", "distribution_json")
_STEP_COLUMNS = ("trial_id", "step", "intermediate_value", "intermediate_value_type")
_ATTR_COLUMNS = ("trial_id", "key", "value_json")
Row = tuple[Any, ...]


def stored_datetime(value: dt.datetime | None) -> dt.datetime | None:
    """A trial's naive local time (as ``FrozenTrial`` holds it) in the installed Optuna's
    stored form."""
    if value is None or not DATETIMES_IN_UTC:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _trial_row(study_id: int, trial: FrozenTrial) -> Row:
    started = stored_datetime(trial.datetime_start)
    return (trial.number, study_id, trial.state.name, started,
            stored_datetime(trial.datetime_complete))  # fmt: skip


def _param_rows(trials: Iterable[tuple[int, FrozenTrial]]) -> Iterator[Row]:
    texts: dict[BaseDistribution, str] = {}
    for trial_id, trial in trials:
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            text = texts.get(distribution)
            if text is None:
                text = texts[distribution] = distribution_to_json(distribution)
            yield trial_id, name, distribution.to_internal_repr(value), text


def _value_rows(trials: Iterable[tuple[int, FrozenTrial]]) -> Iterator[Row]:
    stored = models.TrialValueModel.value_to_stored_repr
    for trial_id, trial in trials:
        for objective, value in enumerate(trial.values or ()):
            number, kind = stored(value)
            yield trial_id, objective, number, kind.name


def _step_rows(trials: Iterable[tuple[int, FrozenTrial]]) -> Iterator[Row]:
    stored = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr
    for trial_id, trial in trials:
        for step, value in trial.intermediate_values.items():
            number, kind = stored(value)
            yield trial_id, step, number, kind.name


def _attr_rows(trials: Iterable[tuple[int, FrozenTrial]], *, system: bool) -> Iterator[Row]:
    dumps = json.dumps
    for trial_id, trial in trials:
        attrs = trial.system_attrs if system else trial.user_attrs
        for key, value in attrs.items():
            yield trial_id, key, dumps(value)


def _execute(conn: Connection, table: Any, keys: Sequence[str], rows: Iterable[Row]) -> None:
    """``INSERT`` every row (values of ``keys``, in the table's column order; an enum by
    its stored name, a real as a float or an int): PostgreSQL's ``COPY`` through psycopg,
    else the driver's ``executemany`` of one compiled statement, :data:`_CHUNK` rows at a
    time. A column whose type converts values for the driver (a datetime as SQLite's
    text) has them converted first, as SQLAlchemy's own ``executemany`` would, without
    its per-row work, which was most of a study's write time."""
    columns = [table.c[k] for k in keys]
    if [c.key for c in table.c if c.key in keys] != list(keys):
        raise ValueError(f"give {table.name}'s columns in its order")
    convert = [
        (i, p)
        for i, c in enumerate(columns)
        if not isinstance(c.type, Enum | Float)  # given as names and floats
        and (p := c.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)) is not None
    ]
    if convert:
        rows = (_converted(row, convert) for row in rows)
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
        _copy(conn, table, columns, rows)
        return
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=list(keys))
    positional = bool(compiled.positional)
    if positional and list(compiled.positiontup or ()) != list(keys):  # pragma: no cover
        raise RuntimeError(f"unexpected parameter order inserting into {table.name}")
    for chunk in _chunks(rows):
        params = chunk if positional else [dict(zip(keys, row, strict=True)) for row in chunk]
        conn.exec_driver_sql(compiled.string, params)


def _converted(row: Row, convert: list[tuple[int, Any]]) -> Row:
    values = list(row)
    for i, processor in convert:
        if values[i] is not None:
            values[i] = processor(values[i])
    return tuple(values)


def _copy(
    conn: Connection, table: Any, columns: Sequence[Any], rows: Iterable[tuple[Any, ...]]
) -> None:
    """PostgreSQL's ``COPY ... FROM STDIN`` on the connection's own transaction."""
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(c.name) for c in columns)
    statement = f"COPY {quote.format_table(table)} ({names}) FROM STDIN"
    raw: Any = conn.connection.dbapi_connection
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
