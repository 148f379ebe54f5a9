"""States a person can trust: queued studies, counts after a cancel, what the server logs,
what optuna-dashboard shows, and commands that refuse to invent an empty database."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cellsearch.service.cli import app
from cellsearch.service.store.db import engine_for
from cellsearch.service.studies.operations import change_status
from cellsearch.service.workers.ledger import SqlStudyLedger
from tests.search.test_spec import spec_data
from tests.service.test_worker import TINY, make_worker

V1 = "/api/v1"
runner = CliRunner()


def _status(api: TestClient, name: str) -> str:
    return str(api.get(f"{V1}/studies/{name}").json()["status"])


def test_a_study_waiting_behind_another_is_queued(api: TestClient, migrated: Any) -> None:
    api.post(f"{V1}/studies", json=spec_data(name="first"))
    api.post(f"{V1}/studies", json=spec_data(name="second"))
    listed = {s["name"]: s["status"] for s in api.get(f"{V1}/studies").json()["items"]}
    assert listed == {"first": "running", "second": "queued"}
    assert _status(api, "second") == "queued"
    assert api.get(f"{V1}/studies/second/report").json()["study"]["status"] == "queued"
    ledger = SqlStudyLedger(engine_for(migrated), grace_period=migrated.grace_period)
    for _ in range(4):  # every unit of the first study is taken: workers move on
        claim = ledger.claim()
        assert claim is not None and claim.study_name == "first"
    assert _status(api, "second") == "running"
    api.post(f"{V1}/studies/second/pause")
    assert _status(api, "second") == "paused"  # a stored status other than running shows as is


def test_a_lone_study_without_trials_is_running_not_queued(api: TestClient) -> None:
    api.post(f"{V1}/studies", json=spec_data(name="alone"))
    assert _status(api, "alone") == "running"


def test_after_a_cancel_show_list_and_report_agree(
    api: TestClient, migrated: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    api.post(f"{V1}/studies", json=spec_data(**TINY))
    worker, ledger = make_worker(migrated)
    with caplog.at_level(logging.INFO, logger="cellsearch.search.trial.objective"):
        done = worker.step()  # one trial trains to the end
    assert done is not None and done.outcome == "complete"
    real_status = ledger.status

    def cancel_during_the_trial(name: str) -> str | None:
        if real_status(name) == "running":
            change_status(engine=engine_for(migrated), name=name, action="cancel")
        return real_status(name)

    monkeypatch.setattr(ledger, "status", cancel_during_the_trial)
    with caplog.at_level(logging.INFO, logger="cellsearch.search.trial.objective"):
        stopped = worker.step()
    assert stopped is not None and stopped.outcome == "interrupted"
    shown = api.get(f"{V1}/studies/adding-t20").json()
    (listed,) = api.get(f"{V1}/studies").json()["items"]
    report = api.get(f"{V1}/studies/adding-t20/report").json()
    assert shown["status"] == listed["status"] == report["study"]["status"] == "cancelled"
    assert shown["counts"] == listed["counts"]
    expected = {"complete": 1, "pruned": 0, "failed": 0, "requeued": 1, "running": 0,
                "waiting": 0, "finished": 1}  # fmt: skip
    assert {k: shown["counts"][k] for k in expected} == expected
    assert report["study"]["trial_counts"] == expected
    assert report["study"]["n_finished"] == shown["counts"]["finished"] == 1
    page = api.get(f"{V1}/studies/adding-t20/report.html").text
    assert "the study was cancelled; 1 of 4 trials have finished" in page
    lines = [r.getMessage() for r in caplog.records if "study adding-t20 trial" in r.getMessage()]
    assert len(lines) == 2  # one line per finished trial
    assert lines[0].startswith("study adding-t20 trial 0 (")
    assert "complete, val_loss " in lines[0] and "2 epochs" in lines[0] and lines[0].endswith(" s")
    assert "interrupted" in lines[1] and "1 epochs" in lines[1]


@pytest.mark.parametrize(
    ("overrides", "label"),
    [({}, "validation MSE"),
     ({"task": {"kind": "digits", "mode": "rows"}, "budget": {"n_trials": 2},
       "objective": {"metric": "val_metric", "direction": "maximize"}}, "validation accuracy"),
     ({"task": {"kind": "copy", "seq_len": 5, "n_train": 8, "n_val": 8, "n_test": 8}},
      "validation cross-entropy")],
)  # fmt: skip
def test_optuna_dashboard_names_the_objective_and_shows_the_spec(
    api: TestClient, migrated: Any, overrides: dict[str, Any], label: str
) -> None:
    assert api.post(f"{V1}/studies", json=spec_data(**overrides)).status_code == 201
    study = optuna.load_study(study_name="adding-t20", storage=migrated.database_url)
    assert study.metric_names == [label]
    attrs = study.user_attrs
    assert attrs["objective"].startswith(label) and attrs["cell types"] == "lstm, gru, rnn_tanh"
    assert attrs["task"].startswith(overrides.get("task", {}).get("kind", "adding") + ":")


def test_dry_run_endpoint_stores_nothing_and_reports_limits(api: TestClient, migrated: Any) -> None:
    response = api.post(f"{V1}/studies/validate", json=spec_data())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name_available"], body["objective"], body["trials_per_cell"]) == (
        True, "validation MSE", 1)  # fmt: skip
    assert body["limits"]["max_hidden_size"] == 1024
    assert api.get(f"{V1}/studies").json()["total"] == 0
    assert optuna.get_all_study_names(migrated.database_url) == []
    over = api.post(f"{V1}/studies/validate", json=spec_data(budget={"n_trials": 10**6}))
    assert over.status_code == 422 and "max_trials" in over.text


@pytest.mark.parametrize("command", ["dashboard", "worker"])
def test_dashboard_and_worker_refuse_to_create_a_database(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nowhere.db"
    result = CliRunner().invoke(app, [command, "--database-url", f"sqlite:///{missing}"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert f"no database at {missing}" in text
    assert "cellsearch migrate" in text and "cellsearch serve" in text
    assert not missing.exists()


def test_a_study_with_no_live_worker_says_so_until_one_beats(
    api: TestClient, migrated: Any
) -> None:
    from cellsearch.search.worker.protocol import WorkerInfo
    from cellsearch.service.studies.states import NO_WORKER
    from cellsearch.service.workers.roster import SqlWorkerRegistry

    api.post(f"{V1}/studies", json=spec_data(name="alone"))
    shown = api.get(f"{V1}/studies/alone").json()
    assert (shown["status"], shown["note"]) == ("running", NO_WORKER)
    listed = api.get(f"{V1}/studies").json()["items"]
    assert [s["note"] for s in listed] == [NO_WORKER]

    page = api.get(f"{V1}/studies/alone/report.html")
    assert "Nothing runs now: waiting for a worker: none is alive" in page.text
    etag = page.headers["etag"]
    assert (
        api.get(f"{V1}/studies/alone/report.html", headers={"If-None-Match": etag}).status_code
        == 304
    )

    roster = SqlWorkerRegistry(engine_for(migrated), grace_period=migrated.grace_period)
    info = WorkerInfo(worker_id="w1", host="h", pid=1, device="cpu", machine="m")
    roster.beat(info)
    assert api.get(f"{V1}/studies/alone").json()["note"] is None
    again = api.get(f"{V1}/studies/alone/report.html", headers={"If-None-Match": etag})
    assert again.status_code == 200 and "waiting for a worker" not in again.text
    roster.retire("w1")
    api.post(f"{V1}/studies/alone/pause")  # a paused study waits for a person, not a worker
    assert api.get(f"{V1}/studies/alone").json()["note"] is None


def test_show_list_and_wait_print_the_note(capsys: pytest.CaptureFixture[str]) -> None:
    from cellsearch.client import StudyDetail
    from cellsearch.service.cli.progress import progress_line
    from cellsearch.service.cli.render import print_studies, print_study
    from cellsearch.service.studies.states import NO_WORKER

    counts = {"finished": 0, "running": 0, "waiting": 0, "complete": 0, "pruned": 0,
              "failed": 0, "requeued": 0, "reevaluated": 0, "by_cell": {}}  # fmt: skip
    study = StudyDetail.parse(
        {"name": "alone", "status": "running", "task": "adding", "n_trials": 4,
         "n_reevaluations": 0, "cell_types": ["lstm"], "counts": counts,
         "created_at": "2026-12-07T00:00:00", "updated_at": "2026-12-07T00:00:00",
         "spec": {"budget": {"max_epochs": 2}}, "objective": "validation MSE",
         "best_trial": None, "note": NO_WORKER}
    )  # fmt: skip
    line = progress_line(study, [], elapsed=1.0, eta=None)
    assert "0/4, no live worker" in line and len(line) <= 80
    print_study(study)
    assert "waiting for a worker: none is alive" in capsys.readouterr().out
    print_studies([study])
    assert "alone: waiting for a worker" in capsys.readouterr().out


def test_serve_without_local_workers_says_that_studies_wait(
    migrated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from cellsearch.service.workers import processes

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr(processes, "spawn_workers", lambda *a, **k: [])
    # serve sets these in os.environ (for the app it builds): undo them after the test
    monkeypatch.setenv("CELLSEARCH_DATABASE_URL", migrated.database_url)
    monkeypatch.setenv("CELLSEARCH_HOST", "127.0.0.1")
    args = ["serve", "--database-url", migrated.database_url, "--workers", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "0 local worker(s)" in result.output
    assert "studies wait for workers started elsewhere" in result.output
