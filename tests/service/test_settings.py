"""Settings from the environment, and their checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cellsearch.search.study.limits import SpecLimits
from cellsearch.service.settings import DEFAULT_DATABASE_URL, Settings


def test_defaults_and_limits_match_the_spec_defaults() -> None:
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert (settings.port, settings.local_workers) == (8000, 1)
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
