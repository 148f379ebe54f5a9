"""The CLI with keys: keys create|list|revoke, serve's refusal, and plain refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cellsearch.service.access.keys import authenticate
from cellsearch.service.cli import app
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for
from tests.search.test_spec import spec_data
from tests.service.live_server import live_server

runner = CliRunner()


def _create(url: str, name: str, role: str) -> str:
    result = runner.invoke(
        app, ["keys", "create", "--name", name, "--role", role, "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    return result.output.rstrip("\n").splitlines()[-1]


def test_keys_create_prints_the_key_alone_on_the_last_line(sqlite_url: str) -> None:
    key = _create(sqlite_url, "ci", "submitter")
    who = authenticate(engine_for(Settings(database_url=sqlite_url)), key)
    assert who is not None and (who.name, who.role) == ("ci", "submitter")
    listed = runner.invoke(app, ["keys", "list", "--database-url", sqlite_url])
    assert listed.exit_code == 0
    for column in ("name", "role", "prefix", "created", "last used", "revoked"):
        assert column in listed.output
    assert key[:12] in listed.output and key[12:] not in listed.output


def test_keys_errors_are_usage_errors(sqlite_url: str) -> None:
    _create(sqlite_url, "ci", "reader")
    for args, text in [
        (["create", "--name", "ci", "--role", "reader"], "already exists"),
        (["create", "--name", "x", "--role", "root"], "unknown role 'root'"),
        (["revoke", "nobody"], "no key named 'nobody'"),
    ]:
        result = runner.invoke(app, ["keys", *args, "--database-url", sqlite_url])
        assert result.exit_code == 2 and text in result.output, result.output
    revoked = runner.invoke(app, ["keys", "revoke", "ci", "--database-url", sqlite_url])
    assert revoked.exit_code == 0 and "revoked key 'ci'" in revoked.output
    listed = runner.invoke(app, ["keys", "list", "--database-url", sqlite_url]).output
    assert "UTC" in listed.splitlines()[-2]  # the revoked column is filled


def test_serve_refuses_an_open_api_off_loopback(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve sets these in os.environ (for the app it builds): undo them after the test
    monkeypatch.setenv("CELLSEARCH_HOST", "127.0.0.1")
    monkeypatch.setenv("CELLSEARCH_DATABASE_URL", sqlite_url)
    args = ["serve", "--host", "0.0.0.0", "--database-url", sqlite_url, "--workers", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "cellsearch keys create" in result.output and "CELLSEARCH_AUTH=off" in result.output


def test_the_cli_says_plainly_when_it_was_refused(
    migrated: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated.database_url
    reader = _create(url, "viewer", "reader")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_data()))
    with live_server(migrated) as api_url:
        no_key = runner.invoke(app, ["list", "--api-url", api_url])
        assert no_key.exit_code == 1
        assert "requires an API key" in no_key.output and "--api-key" in no_key.output
        bad = runner.invoke(app, ["--api-key", "csk_nope", "list", "--api-url", api_url])
        assert bad.exit_code == 1 and "is not valid here" in bad.output
        listed = runner.invoke(app, ["--api-key", reader, "list", "--api-url", api_url])
        assert listed.exit_code == 0 and "no studies yet" in listed.output
        monkeypatch.setenv("CELLSEARCH_API_KEY", reader)
        refused = runner.invoke(app, ["submit", str(spec), "--api-url", api_url])
        assert refused.exit_code == 1
        assert "refused (403)" in refused.output and "needs submitter" in refused.output
