"""FastAPI dependencies: settings, the engine, Optuna's storage and the caches.

The dependencies that only look up a process-wide object are coroutines: FastAPI runs a
plain function dependency in its thread pool, a hand-off per dependency and request.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import optuna
from fastapi import Depends, Query, Request
from sqlalchemy import Engine

from cellsearch.service.artifacts.operations import store_for
from cellsearch.service.settings import Settings, get_settings
from cellsearch.service.store.db import engine_for, is_sqlite, optuna_storage
from cellsearch.service.store.marker_cache import MarkerCache, MarkerMemo
from cellsearch.service.studies.summaries import SummaryCache

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_engine(settings: SettingsDep) -> Engine:
    """The engine of the service's tables."""
    return engine_for(settings)


def get_storage(settings: SettingsDep) -> optuna.storages.RDBStorage:
    """Optuna's storage on the same database (a thread: the first call connects)."""
    return optuna_storage(settings)


EngineDep = Annotated[Engine, Depends(get_engine)]


async def get_artifact_store(settings: SettingsDep) -> Any:
    """The process's artifact store (:mod:`cellsearch.service.artifacts`)."""
    return store_for(settings)


ArtifactStoreDep = Annotated[Any, Depends(get_artifact_store)]
StorageDep = Annotated[optuna.storages.RDBStorage, Depends(get_storage)]
MAX_OFFSET = 2**31 - 1  # the largest a 32-bit signed integer holds, on every database
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="Items per page.")]


@functools.cache
def _marker_cache(kind: str, size: int) -> MarkerCache[Any]:
    """One cache per kind of value and size for the process."""
    return MarkerCache(size)


async def get_report_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of built reports (one per process, of the configured size)."""
    return _marker_cache("reports", settings.report_cache_size)


ReportCacheDep = Annotated[MarkerCache[Any], Depends(get_report_cache)]


@functools.cache
def _summary_cache() -> SummaryCache:
    return SummaryCache()


async def get_summary_cache() -> SummaryCache:
    """The process's cache of study counts and best trials."""
    return _summary_cache()


SummaryCacheDep = Annotated[SummaryCache, Depends(get_summary_cache)]


@functools.cache
def _markers(max_age: float) -> MarkerMemo:
    return MarkerMemo(max_age)


async def get_markers(settings: SettingsDep) -> MarkerMemo:
    """The process's memo of study change markers (``CELLSEARCH_MARKER_MAX_AGE_S``)."""
    return _markers(settings.marker_max_age_s)


MarkersDep = Annotated[MarkerMemo, Depends(get_markers)]


async def get_page_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of trial pages whose trials have all finished."""
    return _marker_cache("trial pages", settings.trial_page_cache_size)


PageCacheDep = Annotated[MarkerCache[Any], Depends(get_page_cache)]


async def get_selection_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of the trial ids a cell-type filter selects (see
    :func:`cellsearch.service.studies.operations.trial_page`)."""
    return _marker_cache("selections", settings.trial_page_cache_size // 4)


SelectionCacheDep = Annotated[MarkerCache[Any], Depends(get_selection_cache)]


def read_threads(settings: Settings) -> int:
    """How many study and trial reads an API process serves at once."""
    if settings.api_read_threads is not None:
        return settings.api_read_threads
    return 1 if is_sqlite(settings.database_url) else 2


async def read_lane(request: Request, settings: SettingsDep) -> AsyncIterator[None]:
    """Hold a place in the process's read lane (:func:`read_threads` places) while a read
    of studies or trials runs; other reads wait for a place without holding a thread.

    Threads that turn database rows into objects take the interpreter lock back and forth
    (the driver releases it for every row), so reads run in many threads at once cost far
    more CPU than the same reads one after another. Slow work (a report's first build, a
    study's deletion) stays out of the lane, so that it never holds the lane for seconds.
    Measured in ``benchmarks/API.md`` ("The read lane, measured").
    """
    places = read_threads(settings)
    lane = getattr(request.app.state, "read_lane", None)
    if lane is None or lane.total_tokens != places:
        lane = request.app.state.read_lane = anyio.CapacityLimiter(places)
    async with lane:
        yield


READ_LANE = Depends(read_lane, scope="function")
"""The lane for a route: its place is given back when the route's function returns, before
the response is sent, so that a client that reads slowly (or not at all) holds no place."""
