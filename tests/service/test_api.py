"""Every REST endpoint and every error path, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from cellsearch.models import CELLS
from cellsearch.search.tasks import TASKS
from cellsearch.service.settings import Settings
from tests.search.test_spec import spec_data

V1 = "/api/v1"


def create(api: TestClient, **overrides: Any) -> dict[str, Any]:
    response = api.post(f"{V1}/studies", json=spec_data(**overrides))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_create_then_get_and_list(api: TestClient) -> None:
    created = create(api)
    assert created["name"] == "adding-t20"
    assert created["status"] == "running"
    assert created["counts"]["finished"] == 0
    assert created["best_trial"] is None
    assert created["spec"]["space"]["cell_type"] == ["lstm", "gru", "rnn_tanh"]

    got = api.get(f"{V1}/studies/adding-t20").json()
    assert got["spec"] == created["spec"]
    create(api, name="second")
    page = api.get(f"{V1}/studies", params={"limit": 1}).json()
    assert page["total"] == 2
    assert [s["name"] for s in page["items"]] == ["second"]
    page = api.get(f"{V1}/studies", params={"limit": 1, "offset": 1}).json()
    assert [s["name"] for s in page["items"]] == ["adding-t20"]


def test_invalid_spec_is_422_naming_the_field_and_stores_nothing(
    api: TestClient, migrated: Settings
) -> None:
    bad = spec_data(space={"cell_type": ["lstm", "tcn"]})
    response = api.post(f"{V1}/studies", json=bad)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(
        "cell_type" in d["loc"] and "valid names: " + ", ".join(CELLS) in d["msg"] for d in detail
    ), detail
    assert api.get(f"{V1}/studies").json()["total"] == 0
    assert optuna.get_all_study_names(migrated.database_url) == []


def test_a_random_share_above_one_is_422_naming_the_field(
    api: TestClient, migrated: Settings
) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(comparison={"random_share": 1.5}))
    assert response.status_code == 422
    (detail,) = response.json()["detail"]
    assert detail["loc"] == ["body", "comparison", "random_share"], detail
    assert "less than or equal to 1" in detail["msg"]
    assert api.get(f"{V1}/studies").json()["total"] == 0


def test_limit_violation_is_422_naming_limit(api: TestClient, migrated: Settings) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(space={"hidden_size": 5000}))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "space", "hidden_size"]
    assert "max_hidden_size=1024" in error["msg"]
    assert optuna.get_all_study_names(migrated.database_url) == []


def test_duplicate_name_is_409_and_keeps_the_first(api: TestClient, migrated: Settings) -> None:
    create(api, seed=1)
    response = api.post(f"{V1}/studies", json=spec_data(seed=2))
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]
    assert api.get(f"{V1}/studies/adding-t20").json()["spec"]["seed"] == 1


def test_bare_optuna_study_with_the_name_is_409(api: TestClient, migrated: Settings) -> None:
    optuna.create_study(study_name="adding-t20", storage=migrated.database_url)
    response = api.post(f"{V1}/studies", json=spec_data())
    assert response.status_code == 409
    assert api.get(f"{V1}/studies").json()["total"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/studies/nope"),
        ("get", "/studies/nope/trials"),
        ("post", "/studies/nope/pause"),
        ("delete", "/studies/nope"),
        ("get", "/studies/nope/report"),
    ],
)
def test_unknown_study_is_404(api: TestClient, method: str, path: str) -> None:
    response = api.request(method.upper(), f"{V1}{path}")
    assert response.status_code == 404
    assert "'nope' not found" in response.json()["detail"]


def test_lifecycle_transitions(api: TestClient) -> None:
    create(api)
    assert api.post(f"{V1}/studies/adding-t20/pause").json()["status"] == "paused"
    assert api.post(f"{V1}/studies/adding-t20/pause").status_code == 409
    assert api.post(f"{V1}/studies/adding-t20/resume").json()["status"] == "running"
    assert api.post(f"{V1}/studies/adding-t20/cancel").json()["status"] == "cancelled"
    response = api.post(f"{V1}/studies/adding-t20/resume")
    assert response.status_code == 409
    assert "it is cancelled" in response.json()["detail"]
    assert api.post(f"{V1}/studies/adding-t20/explode").status_code == 404  # no such action


def test_delete_removes_both_records(api: TestClient, migrated: Settings) -> None:
    create(api)
    assert api.delete(f"{V1}/studies/adding-t20").status_code == 204
    assert api.get(f"{V1}/studies/adding-t20").status_code == 404
    assert optuna.get_all_study_names(migrated.database_url) == []


def _add_trials(url: str) -> None:
    study = optuna.load_study(study_name="adding-t20", storage=url)
    dist = optuna.distributions.CategoricalDistribution(["lstm", "gru"])
    for i, (cell, state) in enumerate(
        [("lstm", "COMPLETE"), ("gru", "COMPLETE"), ("gru", "PRUNED"), ("lstm", "FAIL")]
    ):
        study.add_trial(
            optuna.trial.create_trial(
                params={"cell_type": cell},
                distributions={"cell_type": dist},
                value=0.1 * (i + 1) if state == "COMPLETE" else None,
                state=optuna.trial.TrialState[state],
                intermediate_values={1: 0.5, 2: 0.1 * (i + 1)},
                user_attrs={"cell_type": cell, "param_count": 100 + i}
                | (
                    {"failure_kind": "diverged", "failure_reason": "nan"} if state == "FAIL" else {}
                ),
            )
        )


def test_trials_filter_paginate_and_counts(api: TestClient, migrated: Settings) -> None:
    create(api, space={"cell_type": ["lstm", "gru"]})
    _add_trials(migrated.database_url)
    all_trials = api.get(f"{V1}/studies/adding-t20/trials").json()
    assert all_trials["total"] == 4
    assert [t["number"] for t in all_trials["items"]] == [0, 1, 2, 3]
    first = all_trials["items"][0]
    assert (first["cell_type"], first["param_count"], first["value"]) == ("lstm", 100, 0.1)
    assert first["learning_curve"] == {"1": 0.5, "2": 0.1}
    failed = all_trials["items"][3]
    assert (failed["state"], failed["failure_kind"]) == ("fail", "diverged")

    gru = api.get(f"{V1}/studies/adding-t20/trials", params={"cell_type": "gru"}).json()
    assert [t["number"] for t in gru["items"]] == [1, 2]
    done = api.get(
        f"{V1}/studies/adding-t20/trials", params=[("state", "complete"), ("state", "pruned")]
    ).json()
    assert [t["number"] for t in done["items"]] == [0, 1, 2]
    page = api.get(f"{V1}/studies/adding-t20/trials", params={"limit": 2, "offset": 2}).json()
    assert ([t["number"] for t in page["items"]], page["total"]) == ([2, 3], 4)

    detail = api.get(f"{V1}/studies/adding-t20").json()
    counts = detail["counts"]
    assert (counts["complete"], counts["pruned"], counts["failed"], counts["finished"]) == (
        2, 1, 1, 4,
    )  # fmt: skip
    assert counts["by_cell"] == {"gru": 2, "lstm": 2}
    assert detail["best_trial"]["number"] == 0


@pytest.mark.parametrize(
    ("params", "text"),
    [({"cell_type": "tcn"}, "'lstm', 'gru'"), ({"state": "exploded"}, "running"),
     ({"limit": 0}, "greater than or equal"), ({"offset": -1}, "greater than or equal")],
)  # fmt: skip
def test_trials_bad_query_is_422(api: TestClient, params: dict[str, Any], text: str) -> None:
    create(api)
    response = api.get(f"{V1}/studies/adding-t20/trials", params=params)
    assert response.status_code == 422
    assert text in response.text
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["query", next(iter(params))]  # located in the query


def test_database_errors_never_reach_the_body(
    api: TestClient, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken query is a 500 without its SQL; an unreachable database is a 503."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from cellsearch.service.studies import operations as studies

    secret = "SELECT secret_column FROM secret_table"
    broken = ProgrammingError(secret, {"p": 1}, Exception("syntax error"))
    monkeypatch.setattr(studies, "list_studies", lambda **_: (_ for _ in ()).throw(broken))
    response = api.get(f"{V1}/studies")
    assert response.status_code == 500
    assert "secret" not in response.text and "internal error" in response.json()["detail"]

    down = OperationalError(secret, {}, Exception("connection refused"))

    def unreachable(**_: Any) -> None:
        from cellsearch.service.store.db import engine_for, session_scope

        with session_scope(engine_for(migrated)):
            raise down

    monkeypatch.setattr(studies, "list_studies", unreachable)
    response = api.get(f"{V1}/studies")
    assert response.status_code == 503
    assert response.json()["detail"] == "database unavailable: connection refused"


def test_cells_and_tasks_catalog(api: TestClient) -> None:
    cells = api.get(f"{V1}/cells").json()
    assert [c["name"] for c in cells] == list(CELLS)
    lstm = cells[0]
    assert lstm["fused"] is True and lstm["state_layout"] == ["h", "c"]
    assert lstm["param_count_example"] == 4 * (64 * 1 + 64 * 64 + 2 * 64)
    assert lstm["param_formula"].startswith("4·H·I + 4·H·H + 8·H per layer")
    tasks = api.get(f"{V1}/tasks").json()
    assert [t["kind"] for t in tasks] == list(TASKS)
    assert "1/6" in tasks[0]["baseline"]
    adding = tasks[0]["parameters"]
    assert adding["properties"]["seq_len"]["default"] == 100 and "kind" in adding["required"]
    schema = api.get(f"{V1}/spec-schema").json()
    assert "task" in schema["properties"]


def test_health_ready_and_docs(api: TestClient, migrated: Settings) -> None:
    store = str(Path(migrated.artifact_dir or "").resolve())
    assert api.get(f"{V1}/healthz").json() == {
        "status": "ok",
        "detail": None,
        "artifact_store": store,
    }
    assert api.get(f"{V1}/readyz").json()["status"] == "ready"
    assert api.get("/docs").status_code == 200
    paths = api.get("/openapi.json").json()["paths"]
    assert f"{V1}/studies/{{name}}/trials" in paths


def test_readyz_reports_missing_migrations(sqlite_url: str) -> None:
    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import Settings, get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: Settings(database_url=sqlite_url)
    with TestClient(app) as client:
        response = client.get(f"{V1}/readyz")
    assert response.status_code == 503
    assert "migrations not current" in response.json()["detail"]


def test_workers_list_is_empty_without_workers(api: TestClient) -> None:
    assert api.get(f"{V1}/workers").json() == {"items": [], "total": 0, "offset": 0, "limit": 50}


def test_report_json_and_page(api: TestClient, migrated: Settings) -> None:
    create(api, space={"cell_type": ["lstm", "gru"]})
    _add_trials(migrated.database_url)
    report = api.get(f"{V1}/studies/adding-t20/report").json()
    cells = {c["cell_type"]: c for c in report["cells"]}
    assert set(cells) == {"lstm", "gru"}
    assert cells["lstm"]["best"]["value"] == 0.1
    assert report["study"]["baseline"] == pytest.approx(1 / 6)
    assert report["warnings"]  # a running study is marked partial
    page = api.get(f"{V1}/studies/adding-t20/report.html")
    assert page.status_code == 200 and "adding-t20" in page.text
    src = re.search(r'<script src="([^"]+)"', page.text)
    assert src is not None and src.group(1).startswith("../../assets/plotly-")
    js = api.get(f"{V1}/studies/adding-t20/{src.group(1)}")  # resolved against the page
    assert js.status_code == 200 and "plotly" in js.text[:2000].lower()
    assert "max-age" in js.headers["cache-control"]


def test_api_process_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, cellsearch.service.api.app, cellsearch.service.cli\n"
        "from cellsearch.models import CELLS\n"
        "CELLS['lstm'].param_count(1, 8, 1)\n"
        "assert 'torch' not in sys.modules, 'torch imported by the API'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bf16_is_refused_only_when_every_live_worker_is_on_cpu(
    api: TestClient, migrated: Settings
) -> None:
    from cellsearch.search.worker.protocol import WorkerInfo
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.workers.roster import SqlWorkerRegistry

    registry = SqlWorkerRegistry(engine_for(migrated), grace_period=migrated.grace_period)
    assert api.post(f"{V1}/studies", json=spec_data(name="a", precision="bf16")).status_code == 201
    registry.beat(WorkerInfo("w1", "host", 1, "cpu"))
    refused = api.post(f"{V1}/studies", json=spec_data(name="b", precision="bf16"))
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "precision"] and "1 live worker(s) train on CPU" in error["msg"]
    assert api.get(f"{V1}/studies/b").status_code == 404  # nothing stored
    assert api.post(f"{V1}/studies", json=spec_data(name="c")).status_code == 201  # fp32 fine
    registry.beat(WorkerInfo("w2", "host", 2, "cuda:0"))
    assert api.post(f"{V1}/studies", json=spec_data(name="d", precision="bf16")).status_code == 201
    bad = api.post(f"{V1}/studies", json=spec_data(name="e", precision="fp8"))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "precision"]
