"""Fixtures of the client's tests: the app on a SQLite file, and a Client that talks to it
in process (the storage does not matter to the client: no PostgreSQL run)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import optuna
import pytest

from cellsearch.client import Client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from cellsearch.service.settings import Settings

ROOT = "http://testserver"
CELL = optuna.distributions.CategoricalDistribution(["lstm", "gru"])
RATE = optuna.distributions.FloatDistribution(1e-4, 0.1, log=True)


@pytest.fixture
def served(sqlite_url: str) -> Settings:
    """Settings of a migrated SQLite database with fast heartbeats."""
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.migrate import upgrade

    settings = Settings(
        database_url=sqlite_url, heartbeat_interval=1, grace_period=3, poll_interval=0.05
    )
    upgrade(settings)
    return settings


@pytest.fixture
def http(served: Settings) -> Iterator[TestClient]:
    """The app's test client (an httpx client) on the served database."""
    from fastapi.testclient import TestClient

    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: served
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def client(http: TestClient) -> Client:
    """A Client of the app, sending its requests in process."""
    return Client(ROOT, api_key="", http=http)


def add_trials(url: str, study: str, rows: Sequence[tuple[str, str, float | None]]) -> None:
    """Finished trials for ``study``: (cell type, Optuna state, value) each, with a
    learning curve of two epochs and the attributes a worker records."""
    target = optuna.load_study(study_name=study, storage=url)
    for number, (cell, state, value) in enumerate(rows):
        kind = {"failure_kind": "diverged"} if state == "FAIL" else {}
        attrs: dict[str, Any] = {"cell_type": cell, "param_count": 300 + number,
                                 "epochs_run": 2, "seconds": 1.25, **kind}  # fmt: skip
        target.add_trial(
            optuna.trial.create_trial(
                params={"cell_type": cell, "learning_rate": 0.01 * (number + 1)},
                distributions={"cell_type": CELL, "learning_rate": RATE},
                value=value,
                state=optuna.trial.TrialState[state],
                intermediate_values={0: 0.5, 1: value or 0.4},
                user_attrs=attrs,
            )
        )
