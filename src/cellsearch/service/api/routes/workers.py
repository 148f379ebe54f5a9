"""Workers seen through their heartbeats, a page at a time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cellsearch.service.api.deps import EngineDep, LimitQuery, OffsetQuery, SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import Page, WorkerOut
from cellsearch.service.api.security import Admin
from cellsearch.service.store.tables import utcnow
from cellsearch.service.workers.roster import worker_page

router = APIRouter(prefix="/workers", tags=["workers"])
LiveQuery = Annotated[
    bool | None,
    Query(
        description="true: only workers whose last heartbeat is within the grace period; "
        "false: only the others (killed or stopped without retiring); unset: every one."
    ),
]


@router.get("", response_model=Page[WorkerOut], responses=errors(401, 403, 422, 503))
def list_workers(
    engine: EngineDep,
    settings: SettingsDep,
    _admin: Admin,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 50,
    live: LiveQuery = None,
) -> Page[WorkerOut]:
    """Workers that sent a heartbeat and did not exit cleanly, oldest first, a page at a
    time (an admin key). ``total`` counts the workers the filter selects."""
    grace = settings.grace_period
    rows, total = worker_page(engine, offset=offset, limit=limit, live=live, grace_period=grace)
    now = utcnow()
    items = [WorkerOut.of(row, now, grace_period=grace) for row in rows]
    return Page(items=items, total=total, offset=offset, limit=limit)
