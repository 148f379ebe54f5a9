"""Create Optuna's tables and migrate the service's own tables (Alembic).

Optuna owns its schema (``RDBStorage`` creates and upgrades it); Alembic here manages
only ``cellsearch_*`` tables, recorded in their own version table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.tables import Base

VERSION_TABLE = "cellsearch_alembic_version"
MIGRATIONS = Path(__file__).parent.parent / "migrations"


def include_name(name: str | None, type_: str, _parent: Any) -> bool:
    """Alembic filter: only our tables (and everything inside them) are compared."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(settings: Settings) -> None:
    """Bring both schemas to their latest version (idempotent)."""
    optuna_storage(settings)  # RDBStorage creates or checks Optuna's own tables
    config = alembic_config(settings.database_url)
    with engine_for(settings).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    """The newest migration shipped with this version."""
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (``None`` before the first)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()
