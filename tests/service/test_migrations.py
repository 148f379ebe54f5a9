"""One database, two owners: Optuna's schema and ours live side by side."""

from __future__ import annotations

from typing import Any

import optuna
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from cellsearch.search.study.spec import parse_spec
from cellsearch.service.db import engine_for, optuna_storage
from cellsearch.service.migrate import (
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    include_name,
    upgrade,
)
from cellsearch.service.studies import create_study
from cellsearch.service.tables import Base
from tests.search.test_spec import spec_data

OPTUNA_TABLES = {"studies", "trials", "trial_params", "trial_values", "alembic_version"}


def test_fresh_database_gets_both_schemas(migrated: Any) -> None:
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


def test_autogenerate_proposes_no_changes(migrated: Any) -> None:
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


def test_upgrade_is_idempotent_and_optuna_loads_every_study(migrated: Any) -> None:
    engine = engine_for(migrated)
    storage = optuna_storage(migrated)
    for name in ("one", "two"):
        create_study(engine=engine, storage=storage, spec=parse_spec(spec_data(name=name)))
    upgrade(migrated)
    names = optuna.get_all_study_names(migrated.database_url)
    assert sorted(names) == ["one", "two"]
    for name in names:
        study = optuna.load_study(study_name=name, storage=migrated.database_url)
        assert study.user_attrs["cellsearch_spec"]["name"] == name


def test_downgrade_touches_only_our_tables(migrated: Any) -> None:
    engine = engine_for(migrated)
    config = alembic_config(migrated.database_url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    tables = set(inspect(engine).get_table_names())
    assert tables >= OPTUNA_TABLES
    assert not {"cellsearch_studies", "cellsearch_workers", "cellsearch_datasets"} & tables
    assert current_revision(engine) is None
