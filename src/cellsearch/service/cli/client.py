"""The CLI's HTTP client of the REST API, and reading spec files.

Every failure ends the command with one plain-text message on stderr (never markup: a
pattern such as ``[a-z0-9]`` prints as written) that says which URL was tried and what
answered: a page that is not the API's (optuna-dashboard's HTML, another site) is named,
not dumped, and an ``--api-url`` without ``http://`` is explained.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer
import yaml
from rich.console import Console

err_console = Console(stderr=True)  # kept for callers; this module prints plain text

RETRYABLE_STATUSES = (502, 503, 504)  # a proxy or the API itself restarting, the database away


class ApiUnavailable(Exception):
    """The API did not answer, or answered that it cannot serve now; worth retrying."""


class Api:
    """A thin client of the REST API; an error response ends the command with its detail."""

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout, headers=headers
        )
        self.has_key = bool(api_key)

    def _call(self, method: str, path: str, what: str = "request", **kwargs: Any) -> Any:
        try:
            return self._send(method, path, what, **kwargs)
        except ApiUnavailable as exc:
            _fail(str(exc))

    def _send(self, method: str, path: str, what: str = "request", **kwargs: Any) -> Any:
        """One request; ApiUnavailable when retrying may help, otherwise the command ends.

        ``what`` names the request's body in validation errors ("invalid spec").
        """
        url = self.http.base_url.join(path.lstrip("/"))
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.UnsupportedProtocol:
            _fail(_scheme_text(str(self.http.base_url)))
        except httpx.TransportError as exc:
            raise ApiUnavailable(
                f"cannot reach the API at {url}: {exc or type(exc).__name__}. Is the service "
                "up (`cellsearch serve`), and is --api-url (CELLSEARCH_API_URL) right?"
            ) from None
        if response.status_code in RETRYABLE_STATUSES:
            raise ApiUnavailable(_error_text(response, what))
        if response.status_code in (401, 403):
            _fail(_refusal_text(response, self.has_key))
        if response.status_code >= 400:
            _fail(_error_text(response, what))
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            _fail(_not_the_api(response))

    def study_or_unavailable(self, name: str) -> dict[str, Any]:
        """Like :meth:`study`, but raises ApiUnavailable instead of ending the command."""
        return self._send("GET", f"/studies/{name}")

    def running_trials(self, name: str) -> list[dict[str, Any]]:
        """The study's running trials (raises ApiUnavailable like :meth:`_send`)."""
        page = self._send(
            "GET", f"/studies/{name}/trials", params={"state": "running", "limit": 100}
        )
        return page["items"]

    def trials(
        self, name: str, *, states: list[str] | None = None, cell: str | None = None
    ) -> list[dict[str, Any]]:
        """Every trial of a study (page by page), filtered by state and cell type."""
        params: dict[str, Any] = {"state": states or [], "limit": 500}
        if cell:
            params["cell_type"] = cell
        items: list[dict[str, Any]] = []
        while True:
            page = self._call(
                "GET", f"/studies/{name}/trials", params={**params, "offset": len(items)}
            )
            items += page["items"]
            if not page["items"] or len(items) >= page["total"]:
                return items

    def validate(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The dry run of a submission: what it would make, or the spec's errors."""
        return self._call("POST", "/studies/validate", what="spec", json=spec)

    def cells(self) -> list[dict[str, Any]]:
        return self._call("GET", "/cells")

    def tasks(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tasks")

    def find_dataset(self, ref: str) -> dict[str, Any]:
        """The data set whose id or name is ``ref`` (the command ends if there is none)."""
        found = [d for d in self.datasets() if ref in (d["id"], d["name"])]
        if not found:
            _fail(f"no data set has the id or name {ref!r} (`cellsearch dataset list`)")
        return next((d for d in found if d["id"] == ref), found[0])

    def submit(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/studies", what="spec", json=spec)

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
        files = {"file": (path.name, content)}
        return self._call("POST", "/datasets", what="upload", files=files, data=data)

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


def _fail(message: str, code: int = 1) -> NoReturn:
    """End the command: ``error: message`` on stderr, as plain text, and exit ``code``."""
    typer.secho("error: ", fg="red", err=True, nl=False)
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _scheme_text(base_url: str) -> str:
    root = base_url.removesuffix("/").removesuffix("/api/v1")
    return (
        f"--api-url {root!r} has no http:// or https:// in front, so it names no web "
        f"address; write it as http://{root.split('://')[-1]} (CELLSEARCH_API_URL the same)"
    )


def _not_the_api(response: httpx.Response) -> str:
    """What answered, when it is not the cellsearch API (an HTML page, other text)."""
    where = f"{response.request.method} {response.request.url} answered HTTP {response.status_code}"
    hint = (
        "is --api-url (CELLSEARCH_API_URL) the API's root, e.g. http://127.0.0.1:8000, and "
        "not optuna-dashboard's or another site's?"
    )
    if "html" in response.headers.get("content-type", "") or "<html" in response.text[:500]:
        title = re.search(r"<title[^>]*>(.*?)</title>", response.text, re.I | re.S)
        named = f" titled {title.group(1).strip()[:80]!r}" if title else ""
        return f"{where} with an HTML page{named}, not the cellsearch API: {hint}"
    first = response.text.strip().splitlines()[0][:120] if response.text.strip() else ""
    return f"{where} with {first!r}, not the cellsearch API: {hint}"


def _refusal_text(response: httpx.Response, has_key: bool) -> str:
    """A refusal for want of a key (401) or of a role (403), said plainly."""
    try:
        detail = str(response.json().get("detail"))
    except ValueError:
        detail = response.text[:500]
    if response.status_code == 403:
        return f"refused (403): {detail}. Ask an admin for a key with the role this needs."
    if has_key:
        return (
            f"refused (401): {detail}. The key given (--api-key or CELLSEARCH_API_KEY) is "
            "not valid here: check it, or ask an admin for a new one."
        )
    return (
        "refused (401): this API requires an API key. Pass --api-key KEY (before the "
        "command: `cellsearch --api-key KEY list`) or set CELLSEARCH_API_KEY; an admin "
        "creates keys with `cellsearch keys create`."
    )


def _error_text(response: httpx.Response, what: str = "request") -> str:
    try:
        body = response.json()
    except ValueError:
        return _not_the_api(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    code = response.status_code
    if detail is None or (code in (404, 405) and detail in ("Not Found", "Method Not Allowed")):
        return (
            f"{response.request.method} {response.request.url} answered HTTP {code} "
            f"{detail or ''}: no such route, so this is not a cellsearch API of this version; "
            "is --api-url (CELLSEARCH_API_URL) right?"
        )
    if isinstance(detail, list):  # validation errors: one line per field
        lines = [
            f"  {'.'.join(str(p) for p in e.get('loc', []) if p != 'body')}: {e.get('msg')}"
            for e in detail
        ]
        return f"HTTP {code}: invalid {what}\n" + "\n".join(lines)
    return f"HTTP {code}: {detail}"


class _SpecLoader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; in a spec it is a number, as in
    YAML 1.2 and JSON (the API takes no string for a number)."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_spec(path: Path) -> dict[str, Any]:
    """Read a spec file (YAML, of which JSON is a subset)."""
    try:
        data = yaml.load(path.read_text(), Loader=_SpecLoader)
    except (OSError, yaml.YAMLError) as exc:
        _fail(f"cannot read {path}: {exc}")
    if not isinstance(data, dict):
        _fail(f"{path}: a spec must be a mapping (name, task, space, budget...)")
    return data
