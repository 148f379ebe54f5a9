"""Workers seen through their heartbeats."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from cellsearch.service.api.deps import EngineDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import WorkerOut
from cellsearch.service.api.security import Admin
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import WorkerRecord, utcnow

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", response_model=list[WorkerOut], responses=errors(401, 403, 503))
def list_workers(engine: EngineDep, _admin: Admin) -> list[WorkerOut]:
    """Every worker that has sent a heartbeat and not exited cleanly (an admin key)."""
    now = utcnow()
    with session_scope(engine) as session:
        rows = session.scalars(select(WorkerRecord).order_by(WorkerRecord.started_at))
        return [WorkerOut.of(r, now) for r in rows]
