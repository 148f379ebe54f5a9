"""One database, two owners: Optuna's schema and ours live side by side."""

from __future__ import annotations

import optuna
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from cellsearch.search.study.limits import parse_spec
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.migrate import (
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    include_name,
    upgrade,
)
from cellsearch.service.store.tables import Base
from cellsearch.service.studies.operations import create_study
from tests.search.test_spec import spec_data

OPTUNA_TABLES = {"studies", "trials", "trial_params", "trial_values", "alembic_version"}


def test_fresh_database_gets_both_schemas(migrated: Settings) -> None:
    engine = engine_for(migrated)
    tables = set(inspect(engine).get_table_names())
    assert tables >= OPTUNA_TABLES
    assert {
        "cellsearch_studies",
        "cellsearch_workers",
        "cellsearch_datasets",
        VERSION_TABLE,
    } <= tables
    assert current_revision(engine) == head_revision()


def test_autogenerate_proposes_no_changes(migrated: Settings) -> None:
    with engine_for(migrated).connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"version_table": VERSION_TABLE, "include_name": include_name,
                  "compare_type": True},
        )  # fmt: skip
        assert compare_metadata(context, Base.metadata) == []


def test_filter_excludes_optuna_tables() -> None:
    assert include_name("cellsearch_studies", "table", None)
    assert not include_name("trials", "table", None)
    assert not include_name("alembic_version", "table", None)


def test_upgrade_is_idempotent_and_optuna_loads_every_study(migrated: Settings) -> None:
    engine = engine_for(migrated)
    storage = optuna_storage(migrated)
    for name in ("one", "two"):
        create_study(engine=engine, storage=storage, spec=parse_spec(spec_data(name=name)))
    upgrade(migrated)
    names = optuna.get_all_study_names(migrated.database_url)
    assert sorted(names) == ["one", "two"]
    for name in names:
        study = optuna.load_study(study_name=name, storage=migrated.database_url)
        assert study.direction == optuna.study.StudyDirection.MINIMIZE


def test_downgrade_touches_only_our_tables(migrated: Settings) -> None:
    engine = engine_for(migrated)
    config = alembic_config(migrated.database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    tables = set(inspect(engine).get_table_names())
    assert tables >= OPTUNA_TABLES
    assert not {"cellsearch_studies", "cellsearch_workers", "cellsearch_datasets"} & tables
    assert current_revision(engine) is None


def _migrate(settings: Settings, revision: str, *, down: bool = False) -> None:
    config = alembic_config(settings.database_url)
    with engine_for(settings).begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_0005_drops_the_second_study_name_and_downgrade_restores_it(migrated: Settings) -> None:
    engine = engine_for(migrated)
    create_study(engine=engine, storage=optuna_storage(migrated), spec=parse_spec(spec_data()))
    _migrate(migrated, "0004", down=True)
    with engine.connect() as conn:
        assert conn.execute(
            text("SELECT name, optuna_study_name FROM cellsearch_studies")
        ).all() == [("adding-t20", "adding-t20")]
    _migrate(migrated, "head")
    columns = {c["name"] for c in inspect(engine).get_columns("cellsearch_studies")}
    assert "optuna_study_name" not in columns and "name" in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM cellsearch_studies")).scalars().all() == [
            "adding-t20"
        ]
