"""The CLI's side of the Python client: its errors as one plain message and an exit status.

The client commands talk to the API through :class:`cellsearch.client.Client` (one HTTP
client for the CLI and for notebooks). Every error the client raises ends the command
with one plain-text message on stderr (never markup: a pattern such as ``[a-z0-9]``
prints as written) and status 1 (:func:`message_of`, applied by the app's command group):
it says which URL was tried and what answered; a page that is not the API's
(optuna-dashboard's HTML, another site) is named, not dumped; an ``--api-url`` without
``http://`` is explained; a refusal says how to pass a key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer

from cellsearch.client import (
    ApiError,
    ApiUnreachable,
    AuthenticationError,
    ClientError,
    InvalidUrl,
    PermissionDenied,
)
from cellsearch.client import load_spec as read_spec


def fail(message: str, code: int = 1) -> NoReturn:
    """End the command: ``error: message`` on stderr, as plain text, and exit ``code``."""
    typer.secho("error: ", fg="red", err=True, nl=False)
    typer.echo(message, err=True)
    raise typer.Exit(code)


def load_spec(path: Path) -> dict[str, Any]:
    """Read a spec file (YAML, of which JSON is a subset); the command ends if it cannot."""
    try:
        return read_spec(path)
    except ClientError as exc:
        fail(str(exc))


def message_of(exc: ClientError) -> str:
    """What the CLI says about an error of the client (it names the CLI's options)."""
    if isinstance(exc, InvalidUrl):
        return _scheme_text(exc.url)
    if isinstance(exc, ApiUnreachable):
        return (
            f"cannot reach the API at {exc.url}: {exc.reason}. Is the service up (`cellsearch "
            "serve`), and is --api-url (CELLSEARCH_API_URL) right?"
        )
    if isinstance(exc, AuthenticationError | PermissionDenied):
        return _refusal_text(exc)
    if isinstance(exc, ApiError) and exc.response is not None:
        if exc.status_code >= 400:
            return _error_text(exc.response, exc.subject)
        return _not_the_api(exc.response)
    return str(exc)


def _scheme_text(base_url: str) -> str:
    root = base_url.removesuffix("/").removesuffix("/api/v1")
    return (
        f"--api-url {root!r} has no http:// or https:// in front, so it names no web "
        f"address; write it as http://{root.split('://')[-1]}"
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


def _refusal_text(exc: AuthenticationError | PermissionDenied) -> str:
    """A refusal for want of a key (401) or of a role (403), said plainly."""
    detail = exc.detail
    if isinstance(exc, PermissionDenied):
        return f"refused (403): {detail}. Ask an admin for a key with the role this needs."
    if exc.key_sent:
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
