"""Database engines and sessions for the service's tables and for Optuna's storage.

One database, two owners: Optuna creates and migrates its own tables through
``RDBStorage``; the service's tables (``cellsearch_*``) are migrated by Alembic.

A worker process has one engine (:func:`engine_for` and :func:`optuna_storage` with
``worker=True``): Optuna's storage and the service's tables share its pool of one kept
connection and one more for the heartbeat thread, so a worker holds at most two
connections while it trains and one while it waits (which it listens on, see
:mod:`cellsearch.service.workers.wakeup`). Its connections are pinged before use only when
they lay unused for :data:`FRESH_S` seconds: a busy worker uses its connection every few
milliseconds, and a ping per use was a round trip (and, on an idle worker, a transaction)
each time. A lost connection still surfaces as a transient error that the worker rides out.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cellsearch.search.optuna_adapter import AdapterStorage
from cellsearch.search.trial.retry import is_transient, summary
from cellsearch.service.errors import StorageUnavailable
from cellsearch.service.settings import Settings

SQLITE_BUSY_TIMEOUT_S = 60
WORKER_POOL = (1, 1)  # a worker's pool: one connection kept, one more for its heartbeat
FRESH_S = 2.0  # a worker's connection used this recently is not pinged before its next use
WORKER_APPLICATION = "cellsearch-worker"  # application_name of a worker's connections


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def engine_kwargs(
    url: str, settings: Settings, *, pool: tuple[int, int] | None = None
) -> dict[str, Any]:
    """Engine options shared by our engine and Optuna's (bounded pools, pre-ping).

    Behind PgBouncer in transaction mode (``db_pooler``), psycopg's server-side prepared
    statements are off: a statement prepared in one server session is unknown in the
    next one PgBouncer hands the connection (PgBouncer before 1.21 cannot track them).
    """
    if is_sqlite(url):
        return {"pool_pre_ping": True, "connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    size, overflow = pool or (settings.db_pool_size, settings.db_max_overflow)
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": size,
        "max_overflow": overflow,
        "pool_recycle": 1800,
    }
    if settings.db_pooler == "pgbouncer":
        kwargs["connect_args"] = {"prepare_threshold": None}
    return kwargs


def sqlite_pragmas(synchronous: str) -> Callable[[Any, Any], None]:
    """The connect hook of a SQLite engine: WAL, the busy timeout, and ``synchronous``.

    With WAL, ``NORMAL`` (the setting's default) flushes the log at checkpoints instead of
    at every commit: a worker commits about twenty times a minimal trial, and the flushes
    were most of its overhead over a plain Optuna loop on SQLite. SQLite stays consistent
    either way; a power loss may roll back the last commits, which the worker protocol
    treats as a kill at that moment (see ``Settings.sqlite_synchronous``).
    """

    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # persistent: Optuna's connections get it
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.close()

    return pragmas


_engines: dict[tuple[str, int, int, str, str], Engine] = {}


def get_engine(
    url: str,
    pool_size: int = 2,
    max_overflow: int = 2,
    pooler: str = "none",
    sqlite_synchronous: str | None = None,
) -> Engine:
    """The process-wide engine for ``url`` (one per URL, pool size, pooler and SQLite
    synchronous mode; that mode unset: the settings' from the environment)."""
    synchronous = sqlite_synchronous or Settings().sqlite_synchronous
    key = (url, pool_size, max_overflow, pooler, synchronous)
    if key not in _engines:
        settings = Settings(database_url=url, db_pooler=pooler)  # type: ignore[arg-type]
        engine = create_engine(url, **engine_kwargs(url, settings, pool=(pool_size, max_overflow)))
        if is_sqlite(url):
            event.listen(engine, "connect", sqlite_pragmas(synchronous))
        _engines[key] = engine
    return _engines[key]


def engine_for(settings: Settings, *, worker: bool = False) -> Engine:
    """The engine for the settings' database; ``worker``: the worker's one engine
    (:func:`worker_engine`)."""
    if worker:
        return worker_engine(settings)
    return get_engine(
        settings.database_url,
        settings.db_pool_size,
        settings.db_max_overflow,
        settings.db_pooler,
        settings.sqlite_synchronous,
    )


_worker_engines: dict[tuple[str, str, str], Engine] = {}


def worker_engine(settings: Settings) -> Engine:
    """A worker process's one engine: a pool of :data:`WORKER_POOL`, shared with its
    Optuna storage, pinged only after :data:`FRESH_S` seconds unused (module docstring)."""
    key = (settings.database_url, settings.db_pooler, settings.sqlite_synchronous)
    if key not in _worker_engines:
        url = settings.database_url
        options = engine_kwargs(url, settings, pool=WORKER_POOL)
        options.update(pool_pre_ping=False, pool_size=WORKER_POOL[0])
        options["max_overflow"] = WORKER_POOL[1]
        if not is_sqlite(url):  # pg_stat_activity (and PgBouncer) name its connections
            options["connect_args"] = {
                **options.get("connect_args", {}),
                "application_name": WORKER_APPLICATION,
            }
        engine = create_engine(url, **options)
        if is_sqlite(url):
            event.listen(engine, "connect", sqlite_pragmas(settings.sqlite_synchronous))
        event.listen(engine, "connect", _mark_used)
        event.listen(engine, "checkin", _mark_used)
        event.listen(engine, "checkout", _ping_if_unused(engine))
        _worker_engines[key] = engine
    return _worker_engines[key]


_USED = "cellsearch_used"


def _mark_used(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_USED] = time.monotonic()


def _ping_if_unused(engine: Engine) -> Any:
    """A checkout hook that pings a connection unused for :data:`FRESH_S` seconds and
    makes the pool replace it when the ping finds it gone."""

    def ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used = record.info.get(_USED)
        if used is not None and time.monotonic() - used < FRESH_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(str(exc)) from exc
            raise
        record.info[_USED] = time.monotonic()

    return ping


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
def connection_scope(engine: Engine, *, autocommit: bool = False) -> Iterator[Connection]:
    """A Core connection in one transaction, for hot paths that need no ORM objects.

    Several times cheaper per statement than a session; same commit/rollback and error
    translation as :func:`session_scope`. With ``autocommit`` every statement commits
    by itself: one round trip for a statement that needs no company (the worker's claim,
    status reads, registry beats), where a transaction takes three (``BEGIN``, the
    statement, ``COMMIT``).

    Raises:
        StorageUnavailable: the database could not be reached; other database errors
            propagate unchanged.
    """
    try:
        if autocommit:
            with engine.connect() as connection:
                connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection
        else:
            with engine.begin() as connection:
                yield connection
    except SQLAlchemyError as exc:
        translated = _translated(exc)
        if translated is exc:
            raise
        raise translated from exc


_storages: dict[tuple[str, int, int, bool], optuna.storages.RDBStorage] = {}


def optuna_storage(settings: Settings, *, worker: bool = False) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the settings' database (one per process and URL).

    ``worker``: on the worker's one engine (:func:`worker_engine`): Optuna's engine takes
    that engine's pool, so Optuna's sessions and the service's tables draw from one pool.
    """
    key = (settings.database_url, settings.heartbeat_interval, settings.grace_period, worker)
    if key not in _storages:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat
        if worker:
            options: dict[str, Any] = {"pool": worker_engine(settings).pool}
        else:
            options = engine_kwargs(settings.database_url, settings)
        _storages[key] = AdapterStorage(
            settings.database_url,
            engine_kwargs=options,
            heartbeat_interval=settings.heartbeat_interval,
            grace_period=settings.grace_period,
        )
    return _storages[key]


def dispose_all() -> None:
    """Close every pooled connection of this process (tests, forks, shutdown)."""
    for storage in _storages.values():
        storage.engine.dispose()
    _storages.clear()
    for engine in [*_engines.values(), *_worker_engines.values()]:
        engine.dispose()
    _engines.clear()
    _worker_engines.clear()
