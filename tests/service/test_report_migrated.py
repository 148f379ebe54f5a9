"""A study made by the first release, migrated to today's schema, renders everywhere
(issue 30, item 6): the first migration's tables and a row as that release wrote it, the
trials its workers left (global Hyperband pruned every rnn_tanh trial; no kind of draw,
no deal, no precision recorded), then ``upgrade`` and every screen."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sqlalchemy import text

from cellsearch.search.report.model import StudyReport
from cellsearch.search.report.suite import SuiteTask, build_suite_report
from cellsearch.service.cli.report_text import report_lines
from cellsearch.service.cli.suite_render import suite_report_lines
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.store.migrate import current_revision, head_revision, upgrade
from cellsearch.service.suites.page import render_suite_html
from tests.service.test_migrations import _migrate

NAME = "quickstart-adding"
V1 = "/api/v1"
# the spec as the first release stored it (StudySpec.model_dump(mode="json") of the
# quick start of that day: every default written out, per-cell options in cell_options)
FIRST_SPEC: dict[str, Any] = {
    "name": NAME,
    "description": "LSTM vs GRU vs tanh RNN on the adding problem, T=30",
    "task": {"kind": "adding", "seq_len": 30, "n_train": 2000, "n_val": 500, "n_test": 500},
    "space": {
        "cell_type": ["lstm", "gru", "rnn_tanh"],
        "hidden_size": {"low": 16, "high": 64, "log": True},
        "num_layers": 1,
        "learning_rate": {"low": 0.001, "high": 0.03, "log": True},
        "batch_size": [32, 64],
        "dropout": 0.0,
        "optimizer": "adam",
        "weight_decay": 0.0,
        "grad_clip": 1.0,
        "cell_options": {"lstm": {"forget_bias": {"low": 0.0, "high": 2.0, "log": False}}},
    },
    "param_budget": None,
    "allocation": "balanced",
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "budget": {"n_trials": 12, "max_epochs": 8, "max_trial_seconds": None},
    "sampler": "tpe",
    "pruner": "hyperband",
    "seed": 0,
}
DISTRIBUTIONS: dict[str, Any] = {
    "cell_type": CategoricalDistribution(["lstm", "gru", "rnn_tanh"]),
    "hidden_size": IntDistribution(16, 64, log=True),
    "learning_rate": FloatDistribution(0.001, 0.03, log=True),
    "batch_size": CategoricalDistribution([32, 64]),
}


def _first_release_trial(number: int, cell: str) -> optuna.trial.FrozenTrial:
    """A trial as the first release's worker recorded it."""
    pruned = cell == "rnn_tanh"
    epochs = 2 if pruned else 8
    curve = {e: 0.17 - (0.002 if pruned else 0.02) * e for e in range(1, epochs + 1)}
    params: dict[str, Any] = {
        "cell_type": cell, "hidden_size": 16 + 4 * number,
        "learning_rate": 0.001 * (1 + number), "batch_size": 32,
    }  # fmt: skip
    distributions = dict(DISTRIBUTIONS)
    if cell == "lstm":
        params["lstm.forget_bias"] = 1.0
        distributions["lstm.forget_bias"] = FloatDistribution(0.0, 2.0)
    attrs = {
        "cell_type": cell, "hidden_size": params["hidden_size"], "num_layers": 1,
        "cell_options": {"forget_bias": 1.0} if cell == "lstm" else {},
        "param_count": 1000 + 40 * number, "device": "cpu", "seed": 1_000_000 + number,
        "torch_version": "2.5.1", "cellsearch_version": "0.1.0", "seconds": 3.0,
        "seconds_per_epoch": 3.0 / epochs, "epochs_run": epochs, "samples_per_second": 5000.0,
        "best_epoch": epochs, "best_val_loss": curve[epochs], "test_loss": curve[epochs],
        "test_metric": curve[epochs], "test_metric_name": "mse",
        "stop_reason": "stopped" if pruned else "completed",
    }  # fmt: skip
    start = dt.datetime(2026, 11, 24, 12, 0) + dt.timedelta(minutes=number)
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE,
        value=curve[epochs],  # a pruned trial's value: its last intermediate value
        datetime_start=start,
        datetime_complete=start + dt.timedelta(seconds=3),
        params=params,
        distributions=distributions,
        user_attrs=attrs,
        system_attrs={},
        intermediate_values=curve,
        trial_id=number,
    )


@pytest.fixture
def first_release(settings: Settings) -> Iterator[Settings]:
    """A database as the first release left it, then migrated to today's schema."""
    _migrate(settings, "0001")
    storage = optuna_storage(settings)
    study = optuna.create_study(study_name=NAME, storage=storage, direction="minimize")
    study.set_user_attr("cellsearch_spec", FIRST_SPEC)
    cells = ["lstm", "gru", "rnn_tanh"]
    for number in range(9):  # three of each; Hyperband pruned all three rnn_tanh trials
        study.add_trial(_first_release_trial(number, cells[number % 3]))
    now = dt.datetime(2026, 11, 24, 13, 0, tzinfo=dt.UTC)
    with engine_for(settings).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO cellsearch_studies (name, optuna_study_name, spec, status, "
                "n_trials, claimed, created_at, updated_at, last_claim_at) VALUES (:name, "
                ":name, :spec, 'completed', 9, 9, :now, :now, :now)"
            ),
            {"name": NAME, "spec": json.dumps({**FIRST_SPEC, "budget": {
                **FIRST_SPEC["budget"], "n_trials": 9}}), "now": now},
        )  # fmt: skip
    upgrade(settings)
    assert current_revision(engine_for(settings)) == head_revision()
    yield settings


@pytest.fixture
def old_api(first_release: Settings) -> Iterator[TestClient]:
    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: first_release
    with TestClient(app) as client:
        yield client


def test_a_first_release_study_renders_everywhere_after_migrating(old_api: TestClient) -> None:
    shown = old_api.get(f"{V1}/studies/{NAME}")
    assert shown.status_code == 200, shown.text
    assert shown.json()["counts"]["finished"] == 9
    assert old_api.get(f"{V1}/studies/{NAME}/trials").json()["total"] == 9
    body = old_api.get(f"{V1}/studies/{NAME}/report")
    assert body.status_code == 200, body.text
    report = StudyReport.model_validate(body.json())
    rnn = report.cell("rnn_tanh")
    assert (rnn.n_completed, rnn.counts.pruned, rnn.best) == (0, 3, None)
    assert rnn.learned is None and report.cell("lstm").learned is True
    assert "rnn_tanh: 0 of 3 trials completed (3 pruned)" in report.verdict
    assert report.study.metric_label == "validation MSE"
    page = old_api.get(f"{V1}/studies/{NAME}/report.html")
    assert page.status_code == 200, page.text[:500]
    assert "rnn_tanh" in page.text and "plot-evp" in page.text
    lines = report_lines(report)
    assert max(len(line) for line in lines) <= 80
    suite = build_suite_report(
        "old", [SuiteTask("adding-t30", NAME, "adding", "completed", 9, 9, report)],
        cell_types=["lstm", "gru", "rnn_tanh"],
    )  # fmt: skip
    assert "rnn_tanh" in render_suite_html(suite)
    assert max(len(line) for line in suite_report_lines(suite)) <= 80
