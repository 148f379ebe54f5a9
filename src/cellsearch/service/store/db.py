"""Database engines and sessions for the service's tables and for Optuna's storage.

One database, two owners: Optuna creates and migrates its own tables through
``RDBStorage``; the service's tables (``cellsearch_*``) are migrated by Alembic.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cellsearch.search.trial.retry import is_transient, summary
from cellsearch.service.errors import StorageUnavailable
from cellsearch.service.settings import Settings

SQLITE_BUSY_TIMEOUT_S = 60


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def engine_kwargs(url: str, settings: Settings) -> dict[str, Any]:
    """Engine options shared by our engine and Optuna's (bounded pools, pre-ping)."""
    if is_sqlite(url):
        return {"pool_pre_ping": True, "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {
        "pool_pre_ping": True,
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_recycle": 1800,
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # persistent: Optuna's connections get it too
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()


_engines: dict[tuple[str, int, int], Engine] = {}


def get_engine(url: str, pool_size: int = 2, max_overflow: int = 2) -> Engine:
    """The process-wide engine for ``url`` (one per URL and pool size)."""
    key = (url, pool_size, max_overflow)
    if key not in _engines:
        settings = Settings(database_url=url, db_pool_size=pool_size, db_max_overflow=max_overflow)
        engine = create_engine(url, **engine_kwargs(url, settings))
        if is_sqlite(url):
            event.listen(engine, "connect", _sqlite_pragmas)
        _engines[key] = engine
    return _engines[key]


def engine_for(settings: Settings) -> Engine:
    """The engine for the settings' database."""
    return get_engine(settings.database_url, settings.db_pool_size, settings.db_max_overflow)


def database_key(engine: Engine) -> str:
    """What names ``engine``'s database in the process's caches (its URL, password hidden)."""
    return engine.url.render_as_string()


def _translated(exc: SQLAlchemyError) -> Exception:
    """A database that cannot be reached becomes :class:`StorageUnavailable` (503); any
    other database error (a constraint, a bug) is raised as it is, for the caller that
    expects it (an ``IntegrityError`` is a conflict where a name is inserted) or, failing
    that, the API's last-resort handler."""
    if is_transient(exc):
        return StorageUnavailable(f"database unavailable: {summary(exc)}")
    return exc


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Raises:
        StorageUnavailable: the database could not be reached (connection lost, server
            down, lock timeout); other database errors propagate unchanged.
    """
    session = sessionmaker(bind=engine, expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def connection_scope(engine: Engine) -> Iterator[Connection]:
    """A Core connection in one transaction, for hot paths that need no ORM objects.

    Several times cheaper per statement than a session; same commit/rollback and error
    translation as :func:`session_scope`.

    Raises:
        StorageUnavailable: the database could not be reached; other database errors
            propagate unchanged.
    """
    try:
        with engine.begin() as connection:
            yield connection
    except SQLAlchemyError as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc


_storages: dict[tuple[str, int, int], optuna.storages.RDBStorage] = {}


def optuna_storage(settings: Settings) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the settings' database (one per process and URL)."""
    key = (settings.database_url, settings.heartbeat_interval, settings.grace_period)
    if key not in _storages:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat
        _storages[key] = optuna.storages.RDBStorage(
            settings.database_url,
            engine_kwargs=engine_kwargs(settings.database_url, settings),
            heartbeat_interval=settings.heartbeat_interval,
            grace_period=settings.grace_period,
        )
    return _storages[key]


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, forks, shutdown)."""
    for storage in _storages.values():
        storage.engine.dispose()
    _storages.clear()
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
