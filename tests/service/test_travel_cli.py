"""``cellsearch export`` and ``cellsearch import`` (and the client's ``export``/``import_``)
against the real app in process: files, messages and exit statuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cellsearch.client import Client, Conflict, InvalidRequest
from cellsearch.service.cli import app
from cellsearch.service.settings import Settings
from tests.service.test_artifacts import submit
from tests.service.test_cli_commands import cli  # noqa: F401 - the fixture
from tests.service.test_travel import NAME

runner = CliRunner()
# the client gives exports and imports a long timeout, which the in-process app ignores
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


def test_export_then_import_under_a_new_name(
    cli: TestClient,  # noqa: F811 - the fixture
    migrated: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submit(migrated, NAME)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["export", NAME])
    assert result.exit_code == 0, result.output
    archive = tmp_path / f"{NAME}.cellsearch.zip"
    assert f"exported {NAME} to {archive.name}" in result.output and archive.stat().st_size > 0
    assert not list(tmp_path.glob("*.part"))
    result = runner.invoke(app, ["import", str(archive)])
    assert result.exit_code == 1 and "already exists" in result.output and "--name" in result.output
    result = runner.invoke(app, ["import", str(archive), "--name", "trip-two"])
    assert result.exit_code == 0, result.output
    assert "imported trip-two: 0 trials, 0 kept models (paused)" in result.output
    assert "cellsearch resume trip-two" in result.output
    result = runner.invoke(app, ["export", "nope", "-o", str(tmp_path / "nope.zip")])
    assert result.exit_code == 1 and not (tmp_path / "nope.zip").exists()
    assert not (tmp_path / "nope.zip.part").exists()


def test_the_client_exports_and_imports(
    api: TestClient, migrated: Settings, tmp_path: Path
) -> None:
    submit(migrated, NAME)
    client = Client("http://testserver", http=api)
    saved = client.export(NAME, tmp_path / "a.zip")
    with pytest.raises(Conflict):
        client.import_(saved)
    made = client.import_(saved, name="copy")
    assert (made.name, made.status, made.trials) == ("copy", "paused", 0)
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(saved.read_bytes()[:-40])
    with pytest.raises(InvalidRequest) as info:
        client.import_(damaged, name="other")
    assert info.value.errors[0].loc == ("body", "file")
