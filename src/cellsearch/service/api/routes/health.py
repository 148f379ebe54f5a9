"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cellsearch.service.api.deps import EngineDep
from cellsearch.service.api.schemas import Health
from cellsearch.service.store.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up (answered on the event loop itself: no thread, no database)."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(engine: EngineDep) -> Health | JSONResponse:
    """The database is reachable and its migrations are current."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = current_revision(engine)
    except Exception as exc:
        return _unready(f"database unreachable: {exc.__class__.__name__}")
    head = head_revision()
    if current != head:
        return _unready(f"migrations not current: database at {current}, code at {head}")
    return Health(status="ready")


def _unready(detail: str) -> JSONResponse:
    return JSONResponse(status_code=503, content={"status": "unready", "detail": detail})
