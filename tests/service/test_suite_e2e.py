"""A suite of two tiny tasks through the real service: API, a real worker, report, CLI."""

from __future__ import annotations

import math
import threading
from typing import Any

import optuna
import pytest
import torch
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cellsearch.client import Client
from cellsearch.search.worker.loop import Worker
from cellsearch.service.cli import app as cli_app
from cellsearch.service.cli import suites as suite_cli
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.workers.runner import sql_backend, trial_artifacts
from tests.service.test_suite_spec import suite_data

V1 = "/api/v1"
TEMPLATE = {
    "space": {"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8}},
    "budget": {"n_trials": 4, "max_epochs": 2},
    "pruner": "none",
    # two epochs learn next to nothing: rank the tasks all the same, to follow the ranking
    "comparison": {"rank_unlearned": True},
}


def make_worker(settings: Any, *, keep_models: bool = False) -> Worker:
    """An in-process worker; ``keep_models``: with the artifact keeper of ``cellsearch
    worker`` (checkpoints and kept models in the settings' artifact store)."""
    engine, storage = engine_for(settings), optuna_storage(settings)
    backend = sql_backend(engine, grace_period=settings.grace_period)
    keeper = trial_artifacts(settings, engine, storage) if keep_models else None
    return Worker(storage, backend, device=torch.device("cpu"), poll_interval=0.05, keeper=keeper)


def best_by_cell(settings: Any, study: str) -> dict[str, float]:
    """The best completed value of each cell type, read straight from Optuna."""
    trials = optuna.load_study(study_name=study, storage=settings.database_url).trials
    best: dict[str, float] = {}
    for t in trials:
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None:
            cell = t.params["cell_type"]
            best[cell] = min(best.get(cell, math.inf), t.value)
    return best


def test_two_tiny_tasks_end_to_end(api: TestClient, migrated: Any) -> None:
    assert api.post(f"{V1}/suites", json=suite_data(study=TEMPLATE)).status_code == 201
    worker = make_worker(migrated)
    for _ in range(4):  # the first study's budget (workers take studies in order)
        assert worker.step() is not None
    suite = api.get(f"{V1}/suites/tiny").json()
    assert [(s["status"], s["counts"]["finished"]) for s in suite["studies"]] == [
        ("completed", 4),
        ("running", 0),
    ]
    partial = api.get(f"{V1}/suites/tiny/report").json()
    rows = {r["task"]: r for r in partial["tasks"]}
    assert rows["adding-t8"]["included"] and not rows["copy-t5"]["included"]
    assert rows["copy-t5"]["reason"] == "running (0 of 4 trials finished); counted once it finishes"
    assert list(partial["scores"]) == ["adding-t8"] and partial["suite"]["partial"]

    while worker.step() is not None:
        pass
    suite = api.get(f"{V1}/suites/tiny").json()
    assert (suite["status"], suite["finished"]) == ("completed", 8)
    report = api.get(f"{V1}/suites/tiny/report").json()
    assert not report["suite"]["partial"] and report["warnings"] == []
    for task, study in (("adding-t8", "tiny-adding-t8"), ("copy-t5", "tiny-copy-t5")):
        want = best_by_cell(migrated, study)
        got = {cell: s["value"] for cell, s in report["scores"][task].items()}
        assert got == pytest.approx(want)
        winner = min(want, key=want.__getitem__)
        assert report["scores"][task][winner]["rank"] == 1.0
        assert report["scores"][task][winner]["normalised"] == 1.0
    ranks = report["comparison"]["average_ranks"]
    for cell in ("lstm", "gru"):
        by_hand = [report["scores"][t][cell]["rank"] for t in ("adding-t8", "copy-t5")]
        assert ranks[cell] == pytest.approx(sum(by_hand) / 2)
    (wtl,) = report["win_tie_loss"]
    assert wtl["wins"] + wtl["ties"] + wtl["losses"] == 2
    assert report["verdict"].startswith(
        "too few tasks to test (2 tasks; the tests need at least 6) (ranked on 2 of 2 tasks)"
    )
    assert report["suite"]["rank_unlearned"] is True
    page = api.get(f"{V1}/suites/tiny/report.html")
    assert page.status_code == 200 and report["verdict"] in page.text
    assert "/api/v1/studies/tiny-copy-t5/report.html" in page.text
    # its studies are ordinary studies, with their own report
    study_report = api.get(f"{V1}/studies/tiny-copy-t5/report").json()
    assert study_report["study"]["study_name"] == "tiny-copy-t5"


@pytest.fixture
def cli_api(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> Client:
    """The CLI's client, talking to the test app."""
    client = Client("http://testserver", http=api)
    monkeypatch.setattr(suite_cli, "api", lambda _ctx, _url: client)
    monkeypatch.setenv("COLUMNS", "200")
    return client


def test_cli_submit_wait_show_report_cancel_delete(
    cli_api: Client, migrated: Any, tmp_path: Any
) -> None:
    runner = CliRunner()
    spec_file = tmp_path / "suite.yaml"
    spec_file.write_text(yaml.safe_dump(suite_data(study=TEMPLATE)))
    worker = make_worker(migrated)
    thread = threading.Thread(target=worker.run, kwargs={"max_trials": 8})
    thread.start()
    try:
        result = runner.invoke(cli_app, ["suite", "submit", str(spec_file), "--wait"])
    finally:
        worker.stop()
        thread.join(timeout=120)
    assert result.exit_code == 0, result.output
    assert "submitted suite tiny: 2 studies, 8 trials in all" in result.output
    assert "tiny-adding-t8" in result.output and "tiny-copy-t5" in result.output
    assert "completed" in result.output

    listed = runner.invoke(cli_app, ["suite", "list"])
    assert listed.exit_code == 0 and "tiny" in listed.output and "8/8" in listed.output
    shown = runner.invoke(cli_app, ["suite", "show", "tiny"])
    assert shown.exit_code == 0 and "4/4" in shown.output
    report = runner.invoke(cli_app, ["suite", "report", "tiny"])
    assert report.exit_code == 0, report.output
    assert "too few tasks to test" in report.output and "average rank" in report.output
    refused = runner.invoke(cli_app, ["suite", "cancel", "tiny"])
    assert refused.exit_code == 1
    assert "cannot cancel suite 'tiny': its studies are completed" in refused.output
    again = runner.invoke(cli_app, ["suite", "submit", str(spec_file)])
    assert again.exit_code == 1 and "suite 'tiny' already exists" in again.output
    deleted = runner.invoke(cli_app, ["suite", "delete", "tiny", "--yes"])
    assert deleted.exit_code == 0 and "deleted suite tiny" in deleted.output
    missing = runner.invoke(cli_app, ["suite", "show", "tiny"])
    assert missing.exit_code == 1 and "suite 'tiny' not found" in missing.output


def test_cli_lifecycle_and_invalid_spec(cli_api: Client, tmp_path: Any) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tiny\ntasks: [{kind: adding}, {kind: ucr, name: Gun}]\nstudy: {}\n")
    result = runner.invoke(cli_app, ["suite", "submit", str(bad)])
    assert result.exit_code == 1
    assert "tasks.1.name: task 1 (ucr)" in result.output
    assert "study.budget: Field required" in result.output
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(suite_data(study=TEMPLATE)))
    assert runner.invoke(cli_app, ["suite", "submit", str(good)]).exit_code == 0
    paused = runner.invoke(cli_app, ["suite", "pause", "tiny"])
    assert paused.exit_code == 0 and "paused" in paused.output
    resumed = runner.invoke(cli_app, ["suite", "resume", "tiny"])
    assert resumed.exit_code == 0 and "running" in resumed.output
    cancelled = runner.invoke(cli_app, ["suite", "cancel", "tiny"])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    report = runner.invoke(cli_app, ["suite", "report", "tiny"])
    assert report.exit_code == 0 and "no finished study yet" in report.output
    aborted = runner.invoke(cli_app, ["suite", "delete", "tiny"], input="n\n")
    assert aborted.exit_code == 1
    assert runner.invoke(cli_app, ["suite", "list"]).output.count("tiny") == 1
