"""Shared fixtures: databases (SQLite and a real PostgreSQL), settings, the API client."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from cellsearch.service.settings import Settings

POSTGRES_ENV = "CELLSEARCH_TEST_POSTGRES_URL"
# Tests read what a trial they just finished changed: no reuse of change markers (the
# tests of the memo set their own age), also in the servers that tests start.
os.environ.setdefault("CELLSEARCH_MARKER_MAX_AGE_S", "0")
# Artifacts of tests that build their own settings (servers, worker processes) go to a
# temporary directory of the run, never into the working directory.
os.environ.setdefault(
    "CELLSEARCH_ARTIFACT_DIR", tempfile.mkdtemp(prefix="cellsearch-test-artifacts-")
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` where no CUDA device is visible, and the long fuzz
    run unless ``-m`` names it."""
    if "fuzz_long" not in (config.getoption("markexpr", "") or ""):
        skip_long = pytest.mark.skip(reason="the long fuzz run: select it with -m fuzz_long")
        for item in items:
            if item.get_closest_marker("fuzz_long") is not None:
                item.add_marker(skip_long)
    marked = [item for item in items if item.get_closest_marker("cuda") is not None]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in marked:
        item.add_marker(skip)


def postgres_admin_url() -> str | None:
    """The server URL for PostgreSQL tests; under CI=true its absence is a failure."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    if os.environ.get("CI") == "true":
        pytest.fail(f"{POSTGRES_ENV} is not set: PostgreSQL tests must run in CI")
    return None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(f"no PostgreSQL: set {POSTGRES_ENV} to run this test")
    from tests.service.databases import throwaway_database

    with throwaway_database(admin, "cellsearch_test") as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A SQLite file in the test's temporary folder."""
    yield f"sqlite:///{tmp_path}/cellsearch.db"
    _dispose_cached_engines()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on SQLite and on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def _dispose_cached_engines() -> None:
    from cellsearch.service.store.db import dispose_all

    dispose_all()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings for tests: fast heartbeats and polling, an artifact store of their own."""
    from cellsearch.service.settings import Settings

    return Settings(
        database_url=db_url,
        heartbeat_interval=1,
        grace_period=3,
        poll_interval=0.05,
        artifact_dir=str(tmp_path / "artifacts"),
    )


@pytest.fixture
def migrated(settings: Settings) -> Settings:
    """The test database with both schemas in place."""
    from cellsearch.service.store.migrate import upgrade

    upgrade(settings)
    return settings


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    """A TestClient of the app whose routes see ``settings``."""
    from fastapi.testclient import TestClient

    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api(migrated: Settings) -> Iterator[TestClient]:
    """A TestClient of the app on the migrated test database."""
    with app_client(migrated) as client:
        yield client


@pytest.fixture
def keys(migrated: Settings) -> dict[str, str]:
    """One key per role on the test database, as ``{role: key}``.

    The ``api`` client runs with the default ``CELLSEARCH_AUTH=auto`` on loopback, so it is
    open until a key exists: a test that asks for this fixture gets an API that requires
    keys, and sends them itself (``headers=auth(keys["reader"])``).
    """
    from cellsearch.service.access.keys import create_key
    from cellsearch.service.store.db import engine_for

    engine = engine_for(migrated)
    return {
        role: create_key(engine, name=role, role=role)[1]
        for role in ("reader", "submitter", "admin")
    }


def auth(key: str) -> dict[str, str]:
    """The header that carries ``key``."""
    return {"Authorization": f"Bearer {key}"}
