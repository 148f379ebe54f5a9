"""Storage calls that ride out a briefly unreachable database."""

from __future__ import annotations

import logging

import optuna
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from cellsearch.search.trial.retry import is_transient, retrying


def refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def wrapped(inner: BaseException) -> optuna.exceptions.StorageInternalError:
    try:
        raise optuna.exceptions.StorageInternalError("commit failed") from inner
    except optuna.exceptions.StorageInternalError as exc:
        return exc


def test_transient_errors_are_recognised_through_wrappers() -> None:
    assert is_transient(refused())
    assert is_transient(wrapped(refused()))
    assert not is_transient(wrapped(IntegrityError("INSERT", {}, Exception("duplicate"))))
    assert not is_transient(ValueError("a bug"))


def test_retries_until_the_database_is_back(caplog: pytest.LogCaptureFixture) -> None:
    failures = [wrapped(refused()), refused()]

    def call() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    with caplog.at_level(logging.WARNING):
        assert retrying(call, what="trial 3: report", patience=10) == "done"
    assert "trial 3: report: database unavailable (connection refused)" in caplog.text
    assert caplog.text.count("retrying in") == 2


def test_other_errors_are_not_retried() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise ValueError("not a storage problem")

    with pytest.raises(ValueError, match="not a storage problem"):
        retrying(call, what="x", patience=10)
    assert len(calls) == 1


def test_gives_up_when_patience_runs_out() -> None:
    calls = []

    def call() -> None:
        calls.append(1)
        raise refused()

    with pytest.raises(OperationalError):
        retrying(call, what="x", patience=0.5)
    assert 2 <= len(calls) <= 5  # 0.2 s, then 0.3 s left: a few tries, then the error
    with pytest.raises(OperationalError):
        retrying(call, what="x", patience=0)  # no patience: one try
