"""CLI error paths that need no running service."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from cellsearch.service.cli import app
from cellsearch.service.workers.processes import gpu_slots

runner = CliRunner()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_worker_refuses_cuda_without_a_gpu(sqlite_url: str) -> None:
    assert runner.invoke(app, ["migrate", "--database-url", sqlite_url]).exit_code == 0
    result = runner.invoke(app, ["worker", "--database-url", sqlite_url, "--device", "cuda:0"])
    assert result.exit_code == 2
    assert "CUDA is not available" in result.output


@pytest.mark.parametrize("device", ["tpu", "cuda:x"])
def test_worker_rejects_unknown_devices(sqlite_url: str, device: str) -> None:
    runner.invoke(app, ["migrate", "--database-url", sqlite_url])
    result = runner.invoke(app, ["worker", "--database-url", sqlite_url, "--device", device])
    assert result.exit_code == 2
    assert "device" in result.output and "auto, cpu, cuda" in result.output


def test_worker_gives_up_on_an_unmigrated_database(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLSEARCH_STARTUP_TIMEOUT", "1")
    Path(sqlite_url.removeprefix("sqlite:///")).touch()  # there, but not migrated
    result = runner.invoke(app, ["worker", "--database-url", sqlite_url, "--device", "cpu"])
    assert result.exit_code == 2
    assert "cellsearch migrate" in result.output and "gave up after 1 s" in result.output


def test_worker_gives_up_on_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSEARCH_STARTUP_TIMEOUT", "1")
    url = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"  # discard port
    result = runner.invoke(app, ["worker", "--database-url", url, "--device", "cpu"])
    assert result.exit_code == 2
    assert "the database is unreachable" in result.output
    assert "gave up after 1 s" in result.output


def test_worker_waits_for_the_migration(sqlite_url: str) -> None:
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.migrate import upgrade
    from cellsearch.service.workers.runner import build_worker

    settings = Settings(database_url=sqlite_url, startup_timeout=30)
    migrating = threading.Timer(1.0, upgrade, args=(settings,))
    migrating.start()
    try:
        worker = build_worker(settings, "cpu")  # waits, then finds the schema in place
    finally:
        migrating.join()
    assert worker.step() is None  # a working worker with nothing to do


@pytest.mark.parametrize(("gpus", "per_gpu"), [("a,b", 1), ("", 1), ("0", 0)])
def test_gpu_slots_reject_bad_input(gpus: str, per_gpu: int) -> None:
    with pytest.raises(ValueError, match=r"--gpus|--per-gpu"):
        gpu_slots(gpus, per_gpu)


def test_gpu_slots_pin_one_visible_device_per_process() -> None:
    slots: list[tuple[str, dict[str, Any]]] = gpu_slots("0,3", 2)
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in slots] == ["0", "0", "3", "3"]
    assert {device for device, _ in slots} == {"cuda:0"}


def test_bad_setting_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLSEARCH_GRACE_PERIOD", "1")
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 2
    assert "grace_period" in result.output
