"""Workers seen through their heartbeats."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from cellsearch.service.api.deps import EngineDep
from cellsearch.service.db import session_scope
from cellsearch.service.schemas import WorkerOut
from cellsearch.service.tables import WorkerRecord, utcnow

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", response_model=list[WorkerOut])
def list_workers(engine: EngineDep) -> list[WorkerOut]:
    """Every worker that has sent a heartbeat and not exited cleanly."""
    now = utcnow()
    with session_scope(engine) as session:
        rows = session.scalars(select(WorkerRecord).order_by(WorkerRecord.started_at))
        return [WorkerOut.of(r, now) for r in rows]
