"""FastAPI dependencies: settings, the engine, Optuna's storage and the caches."""

from __future__ import annotations

import functools
from typing import Annotated, Any

import optuna
from fastapi import Depends, Query
from sqlalchemy import Engine

from cellsearch.service.db import engine_for, optuna_storage
from cellsearch.service.marker_cache import MarkerCache, MarkerMemo
from cellsearch.service.settings import Settings, get_settings
from cellsearch.service.summaries import SummaryCache

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_engine(settings: SettingsDep) -> Engine:
    """The engine of the service's tables."""
    return engine_for(settings)


def get_storage(settings: SettingsDep) -> optuna.storages.RDBStorage:
    """Optuna's storage on the same database."""
    return optuna_storage(settings)


EngineDep = Annotated[Engine, Depends(get_engine)]
StorageDep = Annotated[optuna.storages.RDBStorage, Depends(get_storage)]
MAX_OFFSET = 2**31 - 1  # the largest a 32-bit signed integer holds, on every database
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="Items per page.")]


@functools.cache
def _marker_cache(kind: str, size: int) -> MarkerCache[Any]:
    """One cache per kind of value and size for the process."""
    return MarkerCache(size)


def get_report_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of built reports (one per process, of the configured size)."""
    return _marker_cache("reports", settings.report_cache_size)


ReportCacheDep = Annotated[MarkerCache[Any], Depends(get_report_cache)]


@functools.cache
def get_summary_cache() -> SummaryCache:
    """The process's cache of study counts and best trials."""
    return SummaryCache()


SummaryCacheDep = Annotated[SummaryCache, Depends(get_summary_cache)]


@functools.cache
def _markers(max_age: float) -> MarkerMemo:
    return MarkerMemo(max_age)


def get_markers(settings: SettingsDep) -> MarkerMemo:
    """The process's memo of study change markers (``CELLSEARCH_MARKER_MAX_AGE_S``)."""
    return _markers(settings.marker_max_age_s)


MarkersDep = Annotated[MarkerMemo, Depends(get_markers)]


def get_page_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of trial pages whose trials have all finished."""
    return _marker_cache("trial pages", settings.trial_page_cache_size)


PageCacheDep = Annotated[MarkerCache[Any], Depends(get_page_cache)]


def get_selection_cache(settings: SettingsDep) -> MarkerCache[Any]:
    """The process's cache of the trial ids a cell-type filter selects (see
    :func:`cellsearch.service.studies.trial_page`)."""
    return _marker_cache("selections", settings.trial_page_cache_size // 4)


SelectionCacheDep = Annotated[MarkerCache[Any], Depends(get_selection_cache)]
