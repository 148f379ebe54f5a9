"""One request to the API and its answer: JSON, or the typed error of :mod:`.errors`.

Every request of the client (and so of the CLI) goes through :class:`Transport`, which
knows the API's root and prefix, sends the key, and turns each kind of failure into one
error class: no answer, an answer that is not the API's, an error body (a sentence, or a
list of invalid fields), a retryable 502/503/504.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from cellsearch.client.errors import (
    BY_STATUS,
    ApiError,
    ApiUnreachable,
    AuthenticationError,
    FieldError,
    InvalidRequest,
    InvalidUrl,
    NotTheApi,
    ServiceUnavailable,
)

API_PREFIX = "/api/v1"
PAGE = 500  # items per request when a list is read page by page (the API's largest page)
RETRYABLE_STATUSES = (502, 503, 504)  # a proxy or the API itself restarting, the database away
_FRAMEWORK_DETAILS = ("Not Found", "Method Not Allowed")  # a route this API does not have


class Transport:
    """Requests to the API at ``url`` (its root: ``http://127.0.0.1:8000``).

    Args:
        url: The API's root URL.
        api_key: Sent as ``Authorization: Bearer KEY``; None sends none.
        timeout: Seconds to wait for each answer.
        http: An httpx client to send requests with (proxies, certificates, a test
            transport); the transport makes its own when None, and closes only that one.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.root = url.rstrip("/")
        if urlsplit(self.root).scheme not in ("http", "https"):
            raise InvalidUrl(self.root)
        self.base = self.root + API_PREFIX
        self.key_sent = bool(api_key)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._own = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)

    def url(self, path: str) -> str:
        """The absolute URL of an API path (``/studies`` -> ``ROOT/api/v1/studies``)."""
        return f"{self.base}/{path.lstrip('/')}"

    def close(self) -> None:
        """Close the HTTP client if this transport made it."""
        if self._own:
            self.http.close()

    def download(self, path: str, target: str | Path | None, **options: Any) -> Path:
        """Stream the body of ``GET path`` into the file ``target`` (default: the name the
        answer gives, in the working directory); return the file's path. ``options`` go
        to httpx (``timeout``).

        Raises:
            ApiUnreachable: No answer.
            ApiError: An error answer.
        """
        url = self.url(path)
        try:
            with self.http.stream("GET", url, headers=self._headers, **options) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_of(response, subject="request", key_sent=self.key_sent)
                saved = Path(target) if target is not None else Path(_saved_name(response))
                with saved.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.TransportError as exc:
            raise ApiUnreachable(url, str(exc) or type(exc).__name__) from None
        return saved

    def request(self, method: str, path: str, *, subject: str = "request", **kwargs: Any) -> Any:
        """Send one request; return its JSON (None for an empty body).

        Args:
            method: The HTTP method.
            path: The path under the API's prefix (``/studies/NAME``).
            subject: What the body is, as a 422 names it (``spec``, ``upload``).
            **kwargs: Passed to :meth:`httpx.Client.request` (``params``, ``json``,
                ``files``, ``data``).

        Raises:
            ApiUnreachable: No answer.
            ApiError: An error answer (its subclass says which; see :mod:`.errors`).
        """
        url = self.url(path)
        try:
            response = self.http.request(method, url, headers=self._headers, **kwargs)
        except httpx.UnsupportedProtocol:
            raise InvalidUrl(self.root) from None
        except httpx.TransportError as exc:
            raise ApiUnreachable(url, str(exc) or type(exc).__name__) from None
        if response.status_code >= 400:
            raise error_of(response, subject=subject, key_sent=self.key_sent)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise NotTheApi(
                _what_answered(response), status_code=response.status_code, response=response
            ) from None


def _saved_name(response: httpx.Response) -> str:
    """The file name a download's Content-Disposition gives, or a plain one."""
    found = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
    return found.group(1) if found else "model.safetensors"


def error_of(response: httpx.Response, *, subject: str, key_sent: bool) -> ApiError:
    """The typed error of an error answer."""
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    common: dict[str, Any] = {"response": response, "subject": subject}
    if code in (401, 403):
        text = str(detail) if body is not None else response.text[:500]
        if code == 401:
            return AuthenticationError(text, key_sent=key_sent, **common)
        return BY_STATUS[403](text, status_code=403, **common)
    if code in RETRYABLE_STATUSES:
        text = str(detail) if detail is not None else _what_answered(response)
        return ServiceUnavailable(text, status_code=code, **common)
    if body is None:
        return NotTheApi(_what_answered(response), status_code=code, **common)
    if detail is None or (code in (404, 405) and detail in _FRAMEWORK_DETAILS):
        return NotTheApi(f"{detail or 'no detail'} (no such route)", status_code=code, **common)
    if code == 422 and isinstance(detail, list):
        return InvalidRequest([_field_error(e) for e in detail], **common)
    return BY_STATUS.get(code, ApiError)(str(detail), status_code=code, **common)


def _field_error(entry: Any) -> FieldError:
    if not isinstance(entry, dict):
        return FieldError(loc=(), msg=str(entry), type="value_error")
    loc = tuple(p if isinstance(p, int) else str(p) for p in entry.get("loc", ()))
    return FieldError(loc=loc, msg=str(entry.get("msg")), type=str(entry.get("type", "")))


def _what_answered(response: httpx.Response) -> str:
    """The answer in a few words when it is not the API's: an HTML page and its title, or
    the first line of the text."""
    if "html" in response.headers.get("content-type", "") or "<html" in response.text[:500]:
        title = re.search(r"<title[^>]*>(.*?)</title>", response.text, re.I | re.S)
        return "an HTML page" + (f" titled {title.group(1).strip()[:80]!r}" if title else "")
    text = response.text.strip()
    return repr(text.splitlines()[0][:120] if text else "")


def pages(transport: Transport, path: str) -> list[Any]:
    """Every item of a paginated list, :data:`PAGE` at a time (the first request asks for
    ``limit`` alone, the next ones for an ``offset`` too)."""
    items: list[Any] = []
    params: dict[str, Any] = {"limit": PAGE}
    while True:
        page = transport.request("GET", path, params=params)
        items += page["items"]
        if not page["items"] or len(items) >= page["total"]:
            return items
        params = {"limit": PAGE, "offset": len(items)}
