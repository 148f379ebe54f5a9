"""The roster of workers: a page at a time, live or not, long-dead rows forgotten."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from cellsearch.search.worker.protocol import WorkerInfo
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import connection_scope, engine_for
from cellsearch.service.store.tables import WorkerRecord, utcnow
from cellsearch.service.workers.roster import FORGET_AFTER, SqlWorkerRegistry

V1 = "/api/v1"


def add_rows(settings: Settings, n: int, *, seconds_ago: float, prefix: str) -> None:
    now = utcnow()
    rows = [
        {
            "worker_id": f"{prefix}-{i:04d}",
            "host": "node",
            "pid": i,
            "device": "cpu",
            "machine": "m",
            "started_at": now - timedelta(seconds=seconds_ago + 1, microseconds=i),
            "last_heartbeat": now - timedelta(seconds=seconds_ago),
        }
        for i in range(n)
    ]
    with connection_scope(engine_for(settings)) as conn:
        conn.execute(insert(WorkerRecord), rows)


def test_hundreds_of_workers_come_a_page_at_a_time(api: TestClient, migrated: Settings) -> None:
    add_rows(migrated, 150, seconds_ago=0, prefix="live")
    add_rows(migrated, 90, seconds_ago=migrated.grace_period + 60, prefix="dead")
    page = api.get(f"{V1}/workers").json()
    assert (page["total"], page["offset"], page["limit"], len(page["items"])) == (240, 0, 50, 50)
    assert all(w["worker_id"].startswith("dead") for w in page["items"])  # oldest first
    assert not any(w["live"] for w in page["items"])

    live = api.get(f"{V1}/workers", params={"live": "true", "limit": 500}).json()
    assert live["total"] == len(live["items"]) == 150
    assert all(w["live"] and w["seconds_since_heartbeat"] < 5 for w in live["items"])
    ids = [w["worker_id"] for w in live["items"]]
    assert len(set(ids)) == 150

    dead = api.get(f"{V1}/workers", params={"live": "false", "offset": 80}).json()
    assert (dead["total"], len(dead["items"])) == (90, 10)
    assert api.get(f"{V1}/workers", params={"limit": 501}).status_code == 422


def test_a_starting_worker_forgets_long_dead_rows(migrated: Settings) -> None:
    gone = FORGET_AFTER.total_seconds() + 60
    add_rows(migrated, 3, seconds_ago=gone, prefix="gone")
    add_rows(migrated, 2, seconds_ago=migrated.grace_period + 60, prefix="recent")
    registry = SqlWorkerRegistry(engine_for(migrated), grace_period=migrated.grace_period)
    registry.beat(WorkerInfo(worker_id="new", host="node", pid=1, device="cpu", machine="m"))
    with connection_scope(engine_for(migrated)) as conn:
        ids = set(conn.scalars(select(WorkerRecord.worker_id)))
    assert ids == {"new", "recent-0000", "recent-0001"}


def test_a_beat_counts_the_live_workers_on_its_machine(migrated: Settings) -> None:
    """Itself included, the dead and other machines' workers not; the first beat inserts
    the row, the next ones update it (on PostgreSQL one statement with the count)."""
    add_rows(migrated, 3, seconds_ago=0, prefix="live")
    add_rows(migrated, 2, seconds_ago=migrated.grace_period + 60, prefix="dead")
    registry = SqlWorkerRegistry(engine_for(migrated), grace_period=migrated.grace_period)
    info = WorkerInfo(worker_id="me", host="node", pid=1, device="cpu", machine="m")
    elsewhere = WorkerInfo(worker_id="far", host="other", pid=2, device="cpu", machine="n")
    assert registry.beat(info) == 4  # inserted
    assert registry.beat(info) == 4  # updated
    assert registry.beat(elsewhere) == registry.beat(elsewhere) == 1
    moved = WorkerInfo(worker_id="me", host="node", pid=1, device="cpu", machine="n",
                       study_name="s", trial_number=7)  # fmt: skip
    assert registry.beat(moved) == 2
    with connection_scope(engine_for(migrated)) as conn:
        row = conn.execute(
            select(WorkerRecord.machine, WorkerRecord.trial_number).where(
                WorkerRecord.worker_id == "me"
            )
        ).one()
    assert tuple(row) == ("n", 7)
