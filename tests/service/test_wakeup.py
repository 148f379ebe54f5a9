"""Idle workers' notifications (PostgreSQL LISTEN/NOTIFY) and a worker's one engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from cellsearch.search.study.limits import parse_spec
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import (
    WORKER_APPLICATION,
    dispose_all,
    engine_for,
    optuna_storage,
    worker_engine,
)
from cellsearch.service.store.migrate import upgrade
from cellsearch.service.studies.operations import change_status, create_study
from cellsearch.service.workers.ledger import SqlStudyLedger
from cellsearch.service.workers.wakeup import (
    CHANNEL,
    OwnListener,
    PooledListener,
    notify_work,
    work_signal,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Settings]:
    settings = Settings(database_url=postgres_url, heartbeat_interval=1, grace_period=3)
    upgrade(settings)
    yield settings
    dispose_all()


def conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Listening:
    """A plain psycopg connection listening on the workers' channel."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(conninfo(url), autocommit=True)
        self.conn.execute(f"LISTEN {CHANNEL}")

    def received(self, timeout: float = 5.0) -> list[str]:
        """Payloads that arrive within ``timeout`` s of the first (or nothing)."""
        return [n.payload for n in self.conn.notifies(timeout=timeout, stop_after=1)]

    def close(self) -> None:
        self.conn.close()


def spec(name: str) -> Any:
    return parse_spec(
        {
            "name": name,
            "task": {"kind": "adding", "seq_len": 4, "n_train": 8, "n_val": 4, "n_test": 4},
            "space": {"cell_type": ["gru"], "hidden_size": 2},
            "budget": {"n_trials": 2, "max_epochs": 1},
            "pruner": "none",
        }
    )


def test_submit_and_resume_notify_pause_does_not(pg: Settings) -> None:
    listening = Listening(pg.database_url)
    try:
        engine = engine_for(pg)
        create_study(engine=engine, storage=optuna_storage(pg), spec=spec("notified"))
        assert listening.received() == ["notified"]
        change_status(engine=engine, name="notified", action="pause")
        assert listening.received(timeout=0.3) == []
        change_status(engine=engine, name="notified", action="resume")
        assert listening.received() == ["notified"]
    finally:
        listening.close()


def test_a_unit_given_back_notifies_and_a_refused_release_does_not(pg: Settings) -> None:
    engine = engine_for(pg)
    create_study(engine=engine, storage=optuna_storage(pg), spec=spec("given-back"))
    ledger = SqlStudyLedger(engine, grace_period=pg.grace_period)
    claim = ledger.claim()
    assert claim is not None
    listening = Listening(pg.database_url)
    try:
        ledger.release("given-back", claim.reclaims + 1)  # a reclaim came between: no-op
        assert listening.received(timeout=0.3) == []
        ledger.release("given-back", claim.reclaims)
        assert listening.received() == ["given-back"]
    finally:
        listening.close()


def test_a_rolled_back_change_notifies_nobody(pg: Settings) -> None:
    listening = Listening(pg.database_url)
    try:
        with engine_for(pg).connect() as conn:
            notify_work(conn, "never")
            conn.rollback()
        assert listening.received(timeout=0.3) == []
    finally:
        listening.close()


def worker_backends(settings: Settings) -> int:
    """Connections of worker engines to the test database, seen by the server."""
    with psycopg.connect(conninfo(settings.database_url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (WORKER_APPLICATION,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_the_pooled_listener_waits_on_the_workers_one_connection(pg: Settings) -> None:
    engine = worker_engine(pg)
    assert optuna_storage(pg, worker=True).engine.pool is engine.pool  # one pool for both
    listener = work_signal(pg, engine)
    assert isinstance(listener, PooledListener)
    stop = threading.Event()
    assert listener.wait(5.0, stop.is_set)  # the first wait listens, and says: look now
    assert not listener.wait(0.2, stop.is_set)  # nothing came
    assert worker_backends(pg) == 1

    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(listener.wait(30.0, stop.is_set)))
    waiting.start()
    time.sleep(0.3)
    with engine_for(pg).begin() as conn:
        notify_work(conn, "some-study")
    waiting.join(timeout=10)
    assert woke == [True]
    assert worker_backends(pg) == 1

    # a notification that comes while the connection serves a query is kept for the wait
    with engine.connect() as conn:
        with engine_for(pg).begin() as other:
            notify_work(other, "meanwhile")
        conn.execute(text("SELECT pg_sleep(0.2)"))
    assert listener.wait(5.0, stop.is_set)

    stop.set()  # a stop ends a long wait within a slice
    assert not listener.wait(30.0, stop.is_set)


def test_own_listeners_take_a_slot_each_up_to_the_cap(pg: Settings) -> None:
    stop = threading.Event()
    first = OwnListener(pg.database_url, max_listeners=1)
    second = OwnListener(pg.database_url, max_listeners=1)
    try:
        assert first.wait(1.0, stop.is_set)  # opened, listening: look now
        assert not second.wait(0.2, stop.is_set)  # no slot: it waited, holding nothing
        assert second._conn is None
        with engine_for(pg).begin() as conn:
            notify_work(conn, "s")
        assert first.wait(5.0, stop.is_set)
        first.release()  # busy: its connection and slot go
        assert second.wait(1.0, stop.is_set)
    finally:
        first.close()
        second.close()


def test_behind_a_pooler_without_a_listen_url_workers_poll(pg: Settings) -> None:
    behind = pg.model_copy(update={"db_pooler": "pgbouncer"})
    assert work_signal(behind, engine_for(pg)) is None
    direct = behind.model_copy(update={"listen_url": pg.database_url, "max_listeners": 4})
    signal = work_signal(direct, engine_for(pg))
    assert isinstance(signal, OwnListener) and signal.max_listeners == 4


def test_sqlite_has_no_signal(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url)
    assert work_signal(settings, engine_for(settings)) is None
