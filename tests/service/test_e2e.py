"""End to end: the real service on a SQLite file, the CLI, two local workers, the dashboard."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import optuna
import pytest
import yaml

SPEC = {
    "name": "e2e-adding",
    "task": {"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32},
    "space": {"cell_type": ["lstm", "gru", "rnn_tanh"], "hidden_size": {"low": 4, "high": 8}},
    "budget": {"n_trials": 6, "max_epochs": 2},
    "seed": 3,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


def cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellsearch", *args],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CELLSEARCH_DATABASE_URL": f"sqlite:///{tmp_path}/service.db",
        "CELLSEARCH_HEARTBEAT_INTERVAL": "1",
        "CELLSEARCH_GRACE_PERIOD": "5",
        "CELLSEARCH_POLL_INTERVAL": "0.2",
        "CELLSEARCH_TORCH_THREADS": "1",
        "COLUMNS": "200",
    }


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env["CELLSEARCH_API_URL"] = url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "serve.log").open("w")
    pids: list[int] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellsearch", "serve", "--port", str(port), "--workers", "2",
         "--device", "cpu"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(f"{url}/api/v1/readyz")
        deadline = time.monotonic() + 90
        while len(pids) < 2 and time.monotonic() < deadline:  # both local workers beat
            time.sleep(0.3)
            pids = [w["pid"] for w in httpx.get(f"{url}/api/v1/workers").json()["items"]]
        assert len(pids) == 2, "serve did not start two workers"
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
            assert rc in (0, -signal.SIGTERM), f"serve exited with {rc} on SIGTERM"
            assert not [p for p in pids if _alive(p)], "serve left workers running"
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
            print((tmp_path / "serve.log").read_text()[-5000:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_submit_wait_and_read_back(service: str, env: dict[str, str], tmp_path: Path) -> None:
    spec_file = tmp_path / "study.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    done = cli("submit", str(spec_file), "--wait", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout

    trials = httpx.get(f"{service}/api/v1/studies/e2e-adding/trials").json()
    assert trials["total"] == 6
    assert {t["state"] for t in trials["items"]} <= {"complete", "pruned"}
    assert sorted(t["cell_type"] for t in trials["items"]) == ["gru", "gru", "lstm", "lstm",
                                                                "rnn_tanh", "rnn_tanh"]  # fmt: skip
    assert all(t["param_count"] and t["seconds"] for t in trials["items"])

    study = optuna.load_study(study_name="e2e-adding", storage=env["CELLSEARCH_DATABASE_URL"])
    assert len(study.trials) == 6
    assert study.best_value == httpx.get(f"{service}/api/v1/studies/e2e-adding").json()[
        "best_trial"]["value"]  # fmt: skip

    listed = cli("list", env=env)
    assert listed.returncode == 0 and "e2e-adding" in listed.stdout and "6/6" in listed.stdout
    shown = cli("show", "e2e-adding", env=env)
    assert shown.returncode == 0 and "best: trial" in shown.stdout
    report = cli("report", "e2e-adding", env=env)
    assert report.returncode == 0, report.stderr
    assert "rnn_tanh" in report.stdout and "E[best of" in report.stdout
    again = cli("submit", str(spec_file), env=env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_cli_reports_invalid_spec_and_unreachable_api(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "space": {"cell_type": ["lstm", "tcn"]}}))
    env["CELLSEARCH_API_URL"] = f"http://127.0.0.1:{free_port()}"
    result = cli("submit", str(bad), env=env)
    assert result.returncode == 1
    assert "cannot reach the API" in result.stderr
    not_yaml = tmp_path / "list.yaml"
    not_yaml.write_text("- just\n- a list\n")
    result = cli("submit", str(not_yaml), env=env)
    assert result.returncode == 1 and "must be a mapping" in result.stderr


def test_cli_invalid_spec_names_the_field(
    service: str, env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**SPEC, "space": {"cell_type": ["lstm", "tcn"]}}))
    result = cli("submit", str(bad), env=env)
    assert result.returncode == 1
    assert "space.cell_type" in result.stderr and "valid names" in result.stderr
    assert httpx.get(f"{service}/api/v1/studies").json()["total"] == 0


def test_dashboard_shows_the_same_studies(env: dict[str, str]) -> None:
    assert cli("migrate", env=env).returncode == 0
    optuna.create_study(study_name="seen-by-dashboard", storage=env["CELLSEARCH_DATABASE_URL"])
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cellsearch", "dashboard", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/api/meta")
        studies = httpx.get(f"http://127.0.0.1:{port}/api/studies").json()["study_summaries"]
        assert [s["study_name"] for s in studies] == ["seen-by-dashboard"]
    finally:
        proc.terminate()
        proc.wait(10)
