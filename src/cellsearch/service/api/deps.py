"""FastAPI dependencies: settings, the engine and Optuna's storage."""

from __future__ import annotations

from typing import Annotated

import optuna
from fastapi import Depends, Query
from sqlalchemy import Engine

from cellsearch.service.db import engine_for, optuna_storage
from cellsearch.service.settings import Settings, get_settings

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_engine(settings: SettingsDep) -> Engine:
    """The engine of the service's tables."""
    return engine_for(settings)


def get_storage(settings: SettingsDep) -> optuna.storages.RDBStorage:
    """Optuna's storage on the same database."""
    return optuna_storage(settings)


EngineDep = Annotated[Engine, Depends(get_engine)]
StorageDep = Annotated[optuna.storages.RDBStorage, Depends(get_storage)]
OffsetQuery = Annotated[int, Query(ge=0, description="Items to skip.")]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
