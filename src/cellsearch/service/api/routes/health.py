"""Liveness and readiness."""

from __future__ import annotations

import functools

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.api.schemas import Health
from cellsearch.service.artifacts.store import artifact_location
from cellsearch.service.settings import Settings
from cellsearch.service.store.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz(settings: SettingsDep) -> Health:
    """The process is up (answered on the event loop itself: no thread, no database), and
    where it keeps trained models."""
    return Health(status="ok", artifact_store=_location(settings))


@functools.cache
def _location(settings: Settings) -> str:
    return artifact_location(settings, settings.database_url)


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
