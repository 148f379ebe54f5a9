"""Idle workers wait on PostgreSQL's LISTEN/NOTIFY, not by polling; who notifies, and how.

Whatever makes work for workers notifies the channel :data:`CHANNEL` in the transaction that
makes it (:func:`notify_work`; PostgreSQL delivers at commit, never for a rolled-back
change): a study submitted (alone or in a suite) or resumed, and a unit of a budget given
back (a trial requeued, a lost unit reclaimed, a re-evaluation begun). An idle worker waits
for a notification with a slow fallback poll (:mod:`cellsearch.search.worker.loop`).

``LISTEN`` needs a session that stays on one server connection. Two ways to have one:

* :class:`PooledListener` (PostgreSQL direct): the worker's own pooled connection listens
  while the worker waits, so an idle worker holds that one connection and nothing more;
* :class:`OwnListener` (behind PgBouncer in transaction mode, where a pooled connection is
  a different server session at every transaction): a connection of its own to
  ``listen_url`` (the server's direct address, or a PgBouncer entry in session mode),
  opened when the worker goes idle and closed when it takes work. ``max_listeners`` caps how
  many idle workers hold one at once (PostgreSQL advisory-lock slots on that connection);
  a worker without a slot polls, backing off.

SQLite has no notifications: :func:`work_signal` gives None and idle workers poll.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.engine import make_url

from cellsearch.search.worker.protocol import WorkSignal
from cellsearch.service.settings import Settings

log = logging.getLogger(__name__)
CHANNEL = "cellsearch_work"
SLICE_S = 0.5  # a waiting worker checks for SIGTERM at least this often
LISTEN_SLOTS_KEY = 0x63736C6E  # the advisory-lock class of the listener slots ("csln")
LISTENER_NAME = "cellsearch-listener"  # application_name of an own listening connection


def notify_work(conn: Connection, study_name: str) -> None:
    """Tell idle workers that ``study_name`` may have work, when ``conn``'s transaction
    commits (nothing on SQLite)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_notify(CHANNEL, study_name)))


def work_signal(settings: Settings, engine: Engine) -> WorkSignal | None:
    """The signal idle workers on ``engine`` wait on (module docstring), or None to poll."""
    if engine.dialect.name != "postgresql":
        return None
    if settings.listen_url:
        return OwnListener(settings.listen_url, max_listeners=settings.max_listeners)
    if settings.db_pooler != "none":
        log.warning("behind %s with no CELLSEARCH_LISTEN_URL: idle workers poll (backing off "
                    "to %g s) instead of listening", settings.db_pooler,
                    settings.idle_poll_max)  # fmt: skip
        return None
    return PooledListener(engine)


def _sleep(timeout: float, stopping: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while not stopping() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, SLICE_S))


def _receive(raw: Any, timeout: float, stopping: Callable[[], bool]) -> bool:
    """Wait on psycopg connection ``raw`` for a notification, in slices; True if one came."""
    deadline = time.monotonic() + timeout
    while not stopping() and (left := deadline - time.monotonic()) > 0:
        received = raw.notifies(timeout=min(left, SLICE_S), stop_after=1)
        try:
            if next(received, None) is not None:
                return True
        finally:
            received.close()  # the generator holds the connection's lock until closed
    return False


class PooledListener:
    """The worker's pooled connection listens while the worker waits (PostgreSQL direct).

    The worker's pool keeps one connection (:data:`cellsearch.service.store.db.WORKER_POOL`);
    waiting borrows it, so an idle worker holds one connection. ``LISTEN`` is issued once
    per server session (a replaced connection listens anew); notifications that arrive
    while the connection does other work are kept by psycopg until the next wait.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listening: weakref.WeakSet[Any] = weakref.WeakSet()

    def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
        with self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None  # a checked-out connection has its DBAPI side
            try:
                if raw not in self._listening:
                    conn.exec_driver_sql(f"LISTEN {CHANNEL}")
                    conn.commit()
                    self._listening.add(raw)
                    return True  # notifications before it were missed: look now
                if raw.info.transaction_status:  # a ping began a transaction: end it, or
                    conn.rollback()  # the server holds notifications back
                return _receive(raw, timeout, stopping)
            except self.engine.dialect.loaded_dbapi.OperationalError:
                conn.invalidate()  # the connection broke: the next use makes another
                return True

    def release(self) -> None:
        """Nothing to let go of: the pooled connection serves the trials too."""

    def close(self) -> None:
        """Nothing of its own to close."""


class OwnListener:
    """A listening connection of the worker's own, to ``url``, held only while it waits.

    Args:
        url: A direct address of the server, or a PgBouncer entry in session mode.
        max_listeners: At most this many workers listen at once (None: no limit); one
            without a slot polls, and tries for a slot again at its next wait.
    """

    def __init__(self, url: str, *, max_listeners: int | None = None) -> None:
        self.conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self.max_listeners = max_listeners
        self._conn: Any = None
        self._warned = False

    def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
        if self._conn is None:
            if self._open():
                return True  # notifications before it were missed: look now
            _sleep(timeout, stopping)
            return False
        try:
            return _receive(self._conn, timeout, stopping)
        except Exception as exc:  # the connection broke: open another at the next wait
            log.warning("listening connection lost (%s); opening another", exc)
            self.release()
            return True

    def _open(self) -> bool:
        import psycopg

        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10,
                                   application_name=LISTENER_NAME)  # fmt: skip
        except psycopg.Error as exc:
            if not self._warned:
                log.warning("cannot listen for work (%s); polling", str(exc).strip())
                self._warned = True
            return False
        try:
            if self.max_listeners is not None and not _take_slot(conn, self.max_listeners):
                conn.close()
                return False
            conn.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            conn.close()
            return False
        self._conn, self._warned = conn, False
        return True

    def release(self) -> None:
        """Close the listening connection (its slot, if any, goes with its session)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: nothing to give back
                log.debug("closing a broken listening connection", exc_info=True)

    def close(self) -> None:
        """Close the listening connection."""
        self.release()


def _take_slot(conn: Any, slots: int) -> bool:
    """Take one of ``slots`` session advisory locks on ``conn`` (tried in random order,
    stopping at the first free one); False when all are held."""
    row = conn.execute(
        "SELECT s FROM (SELECT s FROM generate_series(0, %s::int - 1) AS s ORDER BY random())"
        " AS t WHERE pg_try_advisory_lock(%s::int, s) LIMIT 1",
        (slots, LISTEN_SLOTS_KEY),
    ).fetchone()
    return row is not None
