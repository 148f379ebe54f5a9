"""Migration 0008 (suites): up and down keep every study, and the link to its suite."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect, text

from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.migrate import current_revision, head_revision
from cellsearch.service.suites.operations import create_suite
from cellsearch.service.suites.spec import parse_suite
from tests.service.test_migrations import _migrate
from tests.service.test_suite_spec import suite_data


def test_0008_adds_suites_and_downgrade_keeps_the_studies(migrated: Any) -> None:
    engine = engine_for(migrated)
    plan = parse_suite(suite_data(), limits=Settings().limits(), max_tasks=10)
    create_suite(engine=engine, storage=optuna_storage(migrated), plan=plan)
    _migrate(migrated, "0005", down=True)
    assert "cellsearch_suites" not in inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("cellsearch_studies")}
    assert "suite_id" not in columns
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM cellsearch_studies ORDER BY id")).scalars()
        assert list(names) == ["tiny-adding-t8", "tiny-copy-t5"]
    _migrate(migrated, "head")
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        links = conn.execute(text("SELECT suite_id FROM cellsearch_studies")).scalars().all()
    assert links == [None, None]  # the studies stay; the suite is gone with its table
