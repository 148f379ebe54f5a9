"""What every request passes through: a body size limit, and the shape of framework errors.

- An upload without any credential, to a server that requires keys, is a 401 before its
  body is read (the form would otherwise be parsed, and spooled to disk, first).
- Bodies are counted as they arrive: over ``CELLSEARCH_MAX_BODY_BYTES`` (an upload:
  ``CELLSEARCH_MAX_UPLOAD_BYTES`` plus room for the form; a study archive:
  ``CELLSEARCH_MAX_IMPORT_BYTES`` plus room for the form) is a 413 before the body is
  parsed, whatever ``Content-Length`` claimed. Reading a large body gives the event loop
  to other requests every 256 KiB.
- FastAPI's 422 becomes ``{loc, msg, type}`` per field, without echoing the input; a
  body that cannot be read at all (not UTF-8, not a form) is a 422 of the same shape.
- A method the path does not have is a 405 whose ``Allow`` lists every method of the
  path, as the OpenAPI document does (the router lists only those of the first route
  that matched it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cellsearch.service.access.keys import COOKIE_NAME
from cellsearch.service.api.openapi import app_settings
from cellsearch.service.api.responses import field_errors
from cellsearch.service.api.security import NO_KEY, keys_required
from cellsearch.service.store.db import engine_for

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
UPLOAD_PATH = "/api/v1/datasets"
IMPORT_PATH = "/api/v1/studies/import"
YIELD_EVERY = 256 * 1024
"""Body bytes read between two turns of the event loop to other requests."""
FORM_OVERHEAD = 64 * 1024
"""Bytes allowed beyond the upload limit for the multipart form around the file."""


class BodySizeLimit:
    """ASGI middleware: a request body over the limit is a 413, read no further."""

    def __init__(self, app: Callable[..., Awaitable[None]], fastapi_app: FastAPI) -> None:
        self.app = app
        self.fastapi_app = fastapi_app

    def limit_for(self, scope: Scope) -> int:
        """The largest body accepted for this request."""
        settings = app_settings(self.fastapi_app)
        if scope.get("path") == UPLOAD_PATH:
            return settings.max_upload_bytes + FORM_OVERHEAD
        if scope.get("path") == IMPORT_PATH:
            return settings.max_import_bytes + FORM_OVERHEAD
        return settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope.get("path") in (UPLOAD_PATH, IMPORT_PATH) and scope.get("method") == "POST"
        if upload and await self._anonymous(scope):
            await _no_key()(scope, receive, send)  # before a byte of the upload is read
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen, since_yield = 0, 0

        async def counted() -> Message:
            nonlocal seen, since_yield
            message = await receive()
            size = len(message.get("body", b""))
            seen, since_yield = seen + size, since_yield + size
            if seen > limit:
                raise HTTPException(413, detail=_too_large_text(limit))
            if since_yield >= YIELD_EVERY:
                # a body already buffered is read (and a form parsed) without a pause:
                # let other requests run between megabytes
                since_yield = 0
                await asyncio.sleep(0)
            return message

        await self.app(scope, counted, send)

    async def _anonymous(self, scope: Scope) -> bool:
        """An upload without any credential, to a server that requires keys."""
        headers = dict(scope.get("headers") or [])
        cookie = headers.get(b"cookie", b"").decode("latin-1")
        if b"authorization" in headers or b"x-api-key" in headers or COOKIE_NAME in cookie:
            return False
        settings = app_settings(self.fastapi_app)
        try:
            return bool(await run_in_threadpool(keys_required, settings, engine_for(settings)))
        except Exception:  # the database: the route's own check will answer (503)
            return False


def _no_key() -> JSONResponse:
    return JSONResponse(
        status_code=401,
        content={"detail": NO_KEY},
        headers={"WWW-Authenticate": "Bearer", "Connection": "close"},
    )


def _too_large_text(limit: int) -> str:
    return f"request body exceeds this server's limit of {limit} bytes"


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        status_code=413, content={"detail": _too_large_text(limit)}, headers={"Connection": "close"}
    )


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """422 with one ``{loc, msg, type}`` per invalid field."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": field_errors(list(exc.errors()))})


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors as ``{"detail": ...}``; a 405 lists the path's methods."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 400:  # a body that is not text, JSON or a form: invalid, like any
        body = [{"loc": ["body"], "msg": str(exc.detail), "type": "body_unreadable"}]
        return JSONResponse(status_code=422, content={"detail": body})
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request, exc))
    return JSONResponse(
        status_code=exc.status_code, content={"detail": str(exc.detail)}, headers=headers
    )


def allowed_methods(request: Request, exc: HTTPException) -> list[str]:
    """Every method the OpenAPI document gives the request's path (and any the router
    named, for the few routes the document leaves out). A fixed path wins over the
    templates it also matches: ``/studies/validate`` is not a study (that name is
    reserved, :mod:`cellsearch.service.studies.spec_checks`), so ``/studies/{name}``'s methods
    are not its own."""
    table = getattr(request.app.state, "methods_by_path", None)
    if table is None:
        table = [
            (
                re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"),
                {m.upper() for m in operations},
                "{" not in path,
            )
            for path, operations in request.app.openapi()["paths"].items()
        ]
        request.app.state.methods_by_path = table
    matches = [(operations, fixed) for pattern, operations, fixed in table
               if pattern.match(request.url.path)]  # fmt: skip
    fixed = [operations for operations, is_fixed in matches if is_fixed]
    if fixed:
        return sorted(set().union(*fixed))
    methods = {
        m.strip().upper() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()
    }
    for operations, _ in matches:
        methods |= operations
    return sorted(methods)


def install_guards(app: FastAPI) -> None:
    """Add the body limit and the error shapes to ``app``."""
    app.add_middleware(BodySizeLimit, fastapi_app=app)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
