"""What the deployment files and the dashboard command expose (files read, nothing run)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cellsearch.service.cli import app
from tests.service.test_deploy import COMPOSE_FILE, _command, _environment, _k8s_documents

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def test_compose_publishes_the_dashboard_on_loopback_only() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    ports = services["dashboard"]["ports"]
    assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), ports
    assert _environment(services["api"])["CELLSEARCH_AUTH"] == "required"


def test_kubernetes_keeps_the_dashboard_inside_its_pod() -> None:
    docs = _k8s_documents()
    dashboard = next(
        d
        for _, d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("dashboard")
    )
    (container,) = dashboard["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--host") + 1] in LOOPBACK
    labels = dashboard["spec"]["template"]["metadata"]["labels"]
    services = [d for _, d in docs if d["kind"] == "Service"]
    assert not any(s["spec"]["selector"].items() <= labels.items() for s in services)
    config = next(d for _, d in docs if d["kind"] == "ConfigMap")
    assert config["data"]["CELLSEARCH_AUTH"] == "required"


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_dashboard_binds_loopback_by_default_and_warns_otherwise(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, host: str, warned: bool
) -> None:
    import optuna_dashboard

    served: dict[str, Any] = {}
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda _s, **kw: served.update(kw))
    assert CliRunner().invoke(app, ["migrate", "--database-url", sqlite_url]).exit_code == 0
    args = ["dashboard", "--database-url", sqlite_url]
    result = CliRunner().invoke(app, [*args, "--host", host] if host != "127.0.0.1" else args)
    assert result.exit_code == 0, result.output
    assert served["host"] == host
    assert ("has no access control" in result.output) is warned


def test_compose_command_of_the_dashboard_is_unchanged() -> None:
    """The container listens on all its interfaces so that the port can be published."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    command = _command(services["dashboard"])
    assert command[command.index("--host") + 1] == "0.0.0.0"
