"""Settings from the environment, and their checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from cellsearch.search.study.limits import SpecLimits
from cellsearch.service.settings import DEFAULT_DATABASE_URL, Settings
from cellsearch.service.store.db import dispose_all, engine_for, get_engine


def test_defaults_and_limits_match_the_spec_defaults() -> None:
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.port, settings.local_workers, settings.torch_threads) == (8000, None, None)
    assert settings.limits() == SpecLimits()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSEARCH_MAX_HIDDEN_SIZE", "77")
    monkeypatch.setenv("CELLSEARCH_LOCAL_WORKERS", "0")
    settings = Settings()
    assert settings.limits().max_hidden_size == 77
    assert settings.local_workers == 0


def test_grace_period_must_exceed_heartbeat_interval() -> None:
    with pytest.raises(ValidationError, match="grace_period"):
        Settings(heartbeat_interval=10, grace_period=10)


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSEARCH_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


@pytest.mark.parametrize(("value", "parsed"), [("auto", "auto"), ("3", 3)])
def test_torch_threads_is_a_count_or_auto(
    monkeypatch: pytest.MonkeyPatch, value: str, parsed: object
) -> None:
    monkeypatch.setenv("CELLSEARCH_TORCH_THREADS", value)
    assert Settings().torch_threads == parsed


@pytest.mark.parametrize("value", ["0", "many", "-2"])
def test_bad_torch_threads_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CELLSEARCH_TORCH_THREADS", value)
    with pytest.raises(ValidationError, match="torch_threads"):
        Settings()


def test_serve_starts_one_worker_per_usable_cpu_unless_told() -> None:
    from cellsearch.search.worker.cpu import cgroup_cpu_quota, usable_cpus
    from cellsearch.service.cli.server import local_workers

    cpus = usable_cpus(cgroup_cpu_quota())
    assert local_workers(Settings()) == min(cpus, 8)
    assert local_workers(Settings(local_workers=0)) == 0
    assert local_workers(Settings(local_workers=3)) == 3


def _synchronous(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


@pytest.mark.parametrize("worker", [False, True])
def test_sqlite_connections_take_the_synchronous_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, worker: bool
) -> None:
    """NORMAL (1) by default on the service's and a worker's connections, FULL (2) when
    the setting says so, from the environment too; WAL either way."""
    url = f"sqlite:///{tmp_path / 'sync.db'}"
    try:
        engine = engine_for(Settings(database_url=url), worker=worker)
        assert _synchronous(engine) == 1
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        full = Settings(database_url=url, sqlite_synchronous="full")
        assert _synchronous(engine_for(full, worker=worker)) == 2
        monkeypatch.setenv("CELLSEARCH_SQLITE_SYNCHRONOUS", "full")
        assert _synchronous(get_engine(url, pool_size=3)) == 2  # the settings' of the env
    finally:
        dispose_all()


def test_a_bad_synchronous_mode_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSEARCH_SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ValidationError, match="sqlite_synchronous"):
        Settings()
