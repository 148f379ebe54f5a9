"""Several statements sent to PostgreSQL as one query, run by the server as one transaction.

A transaction that takes a row lock and then writes (a new trial under its study's lock,
a running trial's attributes under its own) costs its worker a round trip per statement
plus ``BEGIN`` and ``COMMIT``, and the lock is held meanwhile: across every wait of the
worker's process for the server and for a core. With hundreds of workers on few cores
those waits are most of the time a lock is held, and behind a pooler in transaction mode
the server connection is held as long. Sent as one query of several statements (the
simple query protocol) in autocommit, the statements run one after another in one
implicit transaction that the server commits at the query's end: one round trip, and the
lock held for the server's time alone. Each statement still takes its own snapshot under
``READ COMMITTED``, so a statement after the lock sees what the lock's previous holder
committed, as in the transaction it replaces.

The simple query protocol carries no parameters: the values are bound into the text by
psycopg's client-side binding (``ClientCursor``), after SQLAlchemy's processing for each
bound type. Only psycopg has that cursor; with another driver the callers take their
transaction's path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


def together_possible(engine: Engine | Connection) -> bool:
    """Whether :func:`run_together` can send statements on ``engine``: PostgreSQL through
    psycopg."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def run_together(
    conn: Connection, statements: tuple[ClauseElement, ...], params: dict[str, Any]
) -> list[list[Any]]:
    """Run ``statements`` with ``params`` as one query on ``conn`` (put in autocommit: the
    query is its own transaction); the rows each returned, in order.

    Raises:
        sqlalchemy.exc.DBAPIError: as SQLAlchemy raises the driver's error (an
            ``IntegrityError``, an ``OperationalError``, ...); nothing was committed. A lost
            connection is left for SQLAlchemy to find, which invalidates the pool's
            connections as on any statement of its own.
    """
    import psycopg

    dialect = conn.dialect
    text, compiled = _compiled(dialect, statements)
    values: dict[str, Any] = {}
    for one in compiled:
        for name, value in one.construct_params(params).items():
            process = one.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            values[name] = value if process is None else process(value)
    conn.execution_options(isolation_level="AUTOCOMMIT")
    raw = cast(Any, conn.connection.dbapi_connection)
    results: list[list[Any]] = []
    try:
        with psycopg.ClientCursor(raw) as cursor:
            cursor.execute(text, values)
            for i in range(len(compiled)):
                if i:
                    cursor.nextset()
                results.append(cursor.fetchall() if cursor.description else [])
    except psycopg.Error as exc:
        if raw.broken:  # lost: SQLAlchemy finds it out as on any statement of its own, and
            conn.exec_driver_sql("SELECT 1")  # so invalidates the pool's other connections
        raise DBAPIError.instance(text, values, exc, psycopg.Error, dialect=dialect) from exc
    return results


@functools.cache
def _compiled(dialect: Any, statements: tuple[ClauseElement, ...]) -> tuple[str, Sequence[Any]]:
    """The query's text and its statements compiled, once per dialect.

    Statements compiled apart may name an anonymous parameter alike (``param_1``), each
    with its own value: a name they share must be one the caller binds, or carry the
    same value in each.
    """
    compiled = [cast(SQLCompiler, statement.compile(dialect=dialect)) for statement in statements]
    seen: dict[str, Any] = {}
    for one in compiled:
        for name, bind in one.binds.items():
            other = seen.setdefault(name, bind)
            if (bind.unique or other.unique) and bind.value != other.value:
                raise RuntimeError(f"statements sent together share the anonymous {name!r}")
    return ";\n".join(str(one) for one in compiled), compiled
