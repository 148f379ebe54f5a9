"""The CLI's HTTP client of the REST API, and reading spec files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import typer
import yaml
from rich.console import Console

err_console = Console(stderr=True)


class Api:
    """A thin client of the REST API; an error response ends the command with its detail."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            _fail(f"cannot reach the API at {self.http.base_url}: {exc}. Is the service up?")
        if response.status_code >= 400:
            _fail(_error_text(response))
        return response.json() if response.content else None

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/studies", json=spec)

    def studies(self) -> list[dict[str, Any]]:
        return self._call("GET", "/studies", params={"limit": 500})["items"]

    def study(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/studies/{name}")

    def report(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/studies/{name}/report")

    def action(self, name: str, action: str) -> dict[str, Any]:
        return self._call("POST", f"/studies/{name}/{action}")

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/studies/{name}")

    def upload_dataset(self, path: Path, name: str, kind: str | None) -> dict[str, Any]:
        try:
            content = path.read_bytes()
        except OSError as exc:
            _fail(f"cannot read {path}: {exc}")
        data = {"name": name} | ({"kind": kind} if kind else {})
        return self._call("POST", "/datasets", files={"file": (path.name, content)}, data=data)

    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets")

    def delete_dataset(self, dataset_id: str) -> None:
        self._call("DELETE", f"/datasets/{dataset_id}")

    def submit_suite(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/suites", json=spec)

    def suites(self) -> list[dict[str, Any]]:
        return self._call("GET", "/suites", params={"limit": 500})["items"]

    def suite(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/suites/{name}")

    def suite_report(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/suites/{name}/report")

    def suite_action(self, name: str, action: str) -> dict[str, Any]:
        return self._call("POST", f"/suites/{name}/{action}")

    def delete_suite(self, name: str) -> None:
        self._call("DELETE", f"/suites/{name}")


def _fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    raise typer.Exit(1)


def _error_text(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:500]}"
    if isinstance(detail, list):  # validation errors: one line per field
        lines = [
            f"  {'.'.join(str(p) for p in e.get('loc', []) if p != 'body')}: {e.get('msg')}"
            for e in detail
        ]
        return f"HTTP {response.status_code}: invalid spec\n" + "\n".join(lines)
    return f"HTTP {response.status_code}: {detail}"


def load_spec(path: Path) -> dict[str, Any]:
    """Read a spec file (YAML, of which JSON is a subset)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        _fail(f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        _fail(f"{path}: a spec must be a mapping (name, task, space, budget...)")
    return data
