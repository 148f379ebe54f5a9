"""The client commands against the real app (in process): output, messages, exit statuses."""

from __future__ import annotations

import importlib
import io
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import numpy as np
import optuna
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cellsearch.client import Client
from cellsearch.service.cli import app
from tests.search.test_spec import spec_data

runner = CliRunner()
# the module (the package's `app` attribute is the Typer app, which shadows it)
cli_app_module = importlib.import_module("cellsearch.service.cli.app")
V1 = "/api/v1"
CELL = optuna.distributions.CategoricalDistribution(["lstm", "gru"])


def send_with(monkeypatch: pytest.MonkeyPatch, http: httpx.Client, root: str | None = None) -> None:
    """Client commands send their requests with ``http`` (to ``root``, else to the URL
    the command was given), with the key the command was given."""

    def client(url: str, api_key: str | None = None) -> Client:
        return Client(root or url, api_key, http=http)

    monkeypatch.setattr(cli_app_module, "Client", client)


@pytest.fixture
def cli(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """Every client command talks to the test app; returns the app's test client."""
    send_with(monkeypatch, api, "http://testserver")
    return api


def serve_with(monkeypatch: pytest.MonkeyPatch, handler: Any, root: str) -> None:
    """Client commands talk to ``handler`` (an httpx mock transport) at ``root``."""
    send_with(monkeypatch, httpx.Client(transport=httpx.MockTransport(handler)), root)


def spec_file(tmp_path: Path, **overrides: Any) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_data(**overrides)))
    return str(path)


def add_trials(url: str, rows: list[tuple[str, str, float | None]]) -> None:
    study = optuna.load_study(study_name="adding-t20", storage=url)
    for cell, state, value in rows:
        kind = {"failure_kind": "diverged"} if state == "FAIL" else {}
        study.add_trial(
            optuna.trial.create_trial(
                params={"cell_type": cell, "learning_rate": 0.01},
                distributions={
                    "cell_type": CELL,
                    "learning_rate": optuna.distributions.FloatDistribution(1e-4, 0.1, log=True),
                },
                value=value,
                state=optuna.trial.TrialState[state],
                intermediate_values={0: 0.5, 1: value or 0.4},
                user_attrs={
                    "cell_type": cell,
                    "param_count": 321,
                    "epochs_run": 2,
                    "seconds": 1.25,
                    **kind,
                },
            )
        )


def test_messages_are_text_not_markup(cli: TestClient, tmp_path: Path) -> None:
    result = runner.invoke(app, ["submit", spec_file(tmp_path, name="Quickstart_Adding")])
    assert result.exit_code == 1
    assert "String should match pattern '^[a-z0-9][a-z0-9-]{0,62}$'" in result.output
    assert "HTTP 422: invalid spec" in result.output and "  name:" in result.output


def test_a_url_without_a_scheme_is_explained() -> None:
    result = runner.invoke(app, ["list", "--api-url", "127.0.0.1:8000"])
    assert result.exit_code == 1
    assert "--api-url '127.0.0.1:8000' has no http:// or https://" in result.output
    assert "write it as http://127.0.0.1:8000" in result.output


def test_an_html_answer_is_named_not_dumped(monkeypatch: pytest.MonkeyPatch) -> None:
    page = "<!DOCTYPE html><html><head><title>Optuna Dashboard</title></head><body>"
    page += "SECRET-BODY " * 500 + "</body></html>"

    def dashboard(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text=page, headers={"content-type": "text/html"})

    serve_with(monkeypatch, dashboard, "http://127.0.0.1:8080")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1
    assert "GET http://127.0.0.1:8080/api/v1/studies?limit=500 answered HTTP 404" in result.output
    assert "an HTML page titled 'Optuna Dashboard', not the cellsearch API" in result.output
    assert "SECRET-BODY" not in result.output and len(result.output) < 600


def test_another_json_api_is_told_apart_from_a_missing_study(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    serve_with(monkeypatch, lambda r: httpx.Response(404, json={"detail": "Not Found"}),
               "http://other:9000")  # fmt: skip
    result = runner.invoke(app, ["show", "x"])
    assert result.exit_code == 1
    assert "GET http://other:9000/api/v1/studies/x answered HTTP 404" in result.output
    assert "not a cellsearch API" in result.output


def test_an_unreachable_api_names_the_url() -> None:
    result = runner.invoke(app, ["list", "--api-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach the API at http://127.0.0.1:9/api/v1/studies" in result.output


def test_trials_filters_and_prints_json(cli: TestClient, migrated: Any, tmp_path: Path) -> None:
    cli.post(f"{V1}/studies", json=spec_data(space={"cell_type": ["lstm", "gru"]}))
    rows = [("lstm", "COMPLETE", 0.25), ("gru", "COMPLETE", 0.125), ("gru", "FAIL", None)]
    add_trials(migrated.database_url, rows)
    result = runner.invoke(app, ["trials", "adding-t20"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "validation MSE" in lines[0] and all(len(line) <= 80 for line in lines)
    assert any("fail (diverged)" in line for line in lines)
    result = runner.invoke(app, ["trials", "adding-t20", "--cell", "gru", "--state", "complete",
                                 "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert [(t["number"], t["cell_type"], t["value"]) for t in found] == [(1, "gru", 0.125)]
    result = runner.invoke(app, ["trials", "adding-t20", "--state", "exploded"])
    assert result.exit_code == 2 and "states are running" in result.output


def test_validate_is_a_dry_run_against_the_servers_limits(
    cli: TestClient, migrated: Any, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["validate", spec_file(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "valid: adding-t20 would run 4 trials, 1 per cell type" in result.output
    assert "objective: validation MSE (minimize)" in result.output
    assert cli.get(f"{V1}/studies").json()["total"] == 0  # nothing stored
    assert optuna.get_all_study_names(migrated.database_url) == []
    result = runner.invoke(app, ["validate", spec_file(tmp_path, space={"hidden_size": 5000})])
    assert result.exit_code == 1
    assert "space.hidden_size: 5000 exceeds this server's limit max_hidden_size=1024" in (
        result.output)  # fmt: skip
    cli.post(f"{V1}/studies", json=spec_data())
    result = runner.invoke(app, ["validate", spec_file(tmp_path), "--json"])
    assert result.exit_code == 1 and json.loads(result.output)["name_available"] is False


def test_cells_and_tasks_as_tables_and_json(cli: TestClient) -> None:
    cells = runner.invoke(app, ["cells"])
    assert cells.exit_code == 0 and "lstm_peephole" in cells.output
    assert all(len(line) <= 80 for line in cells.output.splitlines())
    tasks = json.loads(runner.invoke(app, ["tasks", "--json"]).output)
    assert {"adding", "copy", "digits"} <= {t["kind"] for t in tasks}
    assert "MSE 1/6" in runner.invoke(app, ["tasks"]).output


def test_listings_print_json(cli: TestClient, migrated: Any) -> None:
    cli.post(f"{V1}/studies", json=spec_data())
    listed = json.loads(runner.invoke(app, ["list", "--json"]).output)
    assert [s["name"] for s in listed] == ["adding-t20"]
    shown = json.loads(runner.invoke(app, ["show", "adding-t20", "--json"]).output)
    assert shown["objective"] == "validation MSE"
    report = json.loads(runner.invoke(app, ["report", "adding-t20", "--json"]).output)
    assert report["study"]["metric_label"] == "validation MSE"
    datasets = json.loads(runner.invoke(app, ["dataset", "list", "--json"]).output)
    assert datasets == []


def test_report_fits_80_columns_and_names_metric_and_baseline(
    cli: TestClient, migrated: Any
) -> None:
    cli.post(f"{V1}/studies", json=spec_data(space={"cell_type": ["lstm", "gru"]},
                                             budget={"n_trials": 8, "max_epochs": 2}))  # fmt: skip
    rows = [(c, "COMPLETE", v) for c in ("lstm", "gru") for v in (0.0001234, 0.01, 0.2, 0.3)]
    add_trials(migrated.database_url, [*rows, ("gru", "FAIL", None)])
    result = runner.invoke(app, ["report", "adding-t20"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0].startswith("adding-t20: validation MSE (minimize)")
    assert lines[1].startswith("baseline 0.1667: predict the constant 1")
    head = next(line for line in lines if line.startswith("cell "))
    assert head.split() == ["cell", "complete", "pruned", "failed", "best", "median", "learned"]
    gru = next(line for line in lines if line.startswith("gru "))
    assert gru.split()[:4] == ["gru", "4", "0", "1"]  # counts, no rates
    assert "yes 2/4 99.9%" in gru  # two values 5% of the way from the baseline 1/6 to 0
    assert any("not of single trials' values" in line for line in lines)
    assert "Kept models" not in result.output  # trials added by hand keep no model


def _npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.normal(size=(40, 6, 2)).astype(np.float32), y=rng.integers(0, 2, 40))
    path = tmp_path / "data.npz"
    path.write_bytes(buffer.getvalue())
    return path


def test_dataset_commands(cli: TestClient, tmp_path: Path) -> None:
    data = str(_npz(tmp_path))
    bad = runner.invoke(app, ["dataset", "upload", data, "--name", "bad name!"])
    assert bad.exit_code == 1
    assert "invalid upload" in bad.output and "invalid spec" not in bad.output
    assert "name:" in bad.output
    good = runner.invoke(app, ["dataset", "upload", data, "--name", "tiny-set"])
    assert good.exit_code == 0, good.output
    missing = runner.invoke(app, ["dataset", "delete", "no-such-set"])
    assert missing.exit_code == 1 and "no data set has the id or name 'no-such-set'" in (
        missing.output)  # fmt: skip
    deleted = runner.invoke(app, ["dataset", "delete", "tiny-set"])
    assert deleted.exit_code == 0 and deleted.output.startswith("deleted data set tiny-set (id ")
    assert cli.get(f"{V1}/datasets").json() == []


@pytest.mark.parametrize(("action", "code", "says"), [
    ("cancel", 3, "was cancelled after 0 of 4 trials"),
    ("complete-all-failed", 4, "ended without a completed trial (4 failed, 0 pruned)"),
])  # fmt: skip
def test_watch_exits_non_zero_when_the_study_gives_no_result(
    cli: TestClient, migrated: Any, action: str, code: int, says: str
) -> None:
    from sqlalchemy import update

    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.tables import StudyRecord

    cli.post(f"{V1}/studies", json=spec_data())
    if action == "cancel":
        cli.post(f"{V1}/studies/adding-t20/cancel")
    else:
        add_trials(migrated.database_url, [("lstm", "FAIL", None)] * 4)
        with engine_for(migrated).begin() as conn:
            conn.execute(update(StudyRecord).values(status="completed", claimed=4))
    result = runner.invoke(app, ["watch", "adding-t20"])
    assert result.exit_code == code, result.output
    assert says in result.output


def test_submit_wait_rides_out_an_api_restart(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, migrated: Any
) -> None:
    """The API is down for a while after the submission; the wait says so and resumes."""
    from cellsearch.service.cli import progress

    down = {"left": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and down["left"] > 0:
            down["left"] -= 1
            raise httpx.ConnectError("connection refused", request=request)
        answer = api.request(request.method, request.url.path, params=request.url.params,
                             content=request.content, headers=dict(request.headers))  # fmt: skip
        if request.method == "POST":
            down["left"] = 3  # "restart" right after the study is made
            add_trials(migrated.database_url, [("lstm", "COMPLETE", 0.1)] * 4)
            change = {"status": "completed", "claimed": 4}
            _set_study(migrated, **change)
        return httpx.Response(answer.status_code, content=answer.content,
                              headers=answer.headers)  # fmt: skip

    serve_with(monkeypatch, flaky, "http://api:8000")
    clock = SimpleNamespace(monotonic=time.monotonic, sleep=lambda _s: None)
    monkeypatch.setattr(progress, "time", clock)  # no waiting between polls
    result = runner.invoke(app, ["submit", spec_file(tmp_path), "--wait"])
    assert result.exit_code == 0, result.output
    assert "cannot reach the API at http://api:8000/api/v1/studies/adding-t20" in result.output
    assert "Retrying every 2 s" in result.output
    assert "the API answers again" in result.output
    assert "4/4 done, completed" in result.output


def _set_study(settings: Any, **values: Any) -> None:
    from sqlalchemy import update

    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.tables import StudyRecord

    with engine_for(settings).begin() as conn:
        conn.execute(update(StudyRecord).values(**values))


def test_delete_asks_first_and_keeps_the_study_on_no(cli: TestClient) -> None:
    cli.post(f"{V1}/studies", json=spec_data())
    kept = runner.invoke(app, ["delete", "adding-t20"], input="n\n")
    assert kept.exit_code == 1 and "delete study 'adding-t20'" in kept.output
    assert cli.get(f"{V1}/studies/adding-t20").status_code == 200
    deleted = runner.invoke(app, ["delete", "adding-t20"], input="y\n")
    assert deleted.exit_code == 0 and deleted.output.endswith("deleted adding-t20\n")
    assert cli.get(f"{V1}/studies/adding-t20").status_code == 404


def test_suite_delete_asks_first_unless_yes(cli: TestClient) -> None:
    from tests.service.test_suite_spec import suite_data

    assert cli.post(f"{V1}/suites", json=suite_data()).status_code == 201
    name = suite_data()["name"]
    kept = runner.invoke(app, ["suite", "delete", name], input="n\n")
    assert kept.exit_code == 1 and f"delete suite {name!r}" in kept.output
    assert cli.get(f"{V1}/suites/{name}").status_code == 200
    deleted = runner.invoke(app, ["suite", "delete", name, "--yes"])
    assert deleted.exit_code == 0 and "delete suite" not in deleted.output
    assert cli.get(f"{V1}/suites/{name}").status_code == 404


def test_the_api_key_option_reaches_the_client_of_that_command_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"items": [], "total": 0, "offset": 0, "limit": 500})

    monkeypatch.delenv("CELLSEARCH_API_KEY", raising=False)
    send_with(monkeypatch, httpx.Client(transport=httpx.MockTransport(handler)))
    assert runner.invoke(app, ["--api-key", "csk_given", "list"]).exit_code == 0
    assert runner.invoke(app, ["list"]).exit_code == 0
    assert seen == ["Bearer csk_given", None]
