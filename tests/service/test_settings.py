"""Settings from the environment, and their checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cellsearch.search.study.limits import SpecLimits
from cellsearch.service.settings import DEFAULT_DATABASE_URL, Settings


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
