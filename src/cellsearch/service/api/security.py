"""Who may call what: the FastAPI dependency that checks a request's key and role.

Each route names the role it needs (``Depends(require(Role.SUBMITTER))``, or
``dependencies=[...]`` on a router). A request carries its key as ``Authorization:
Bearer KEY`` or ``X-API-Key: KEY``; a browser carries the session cookie that ``/login``
gave it. The checks run before the route's body, so a 401 or 403 never tells whether a
study exists. State-changing requests that a browser could send from another site
(a form post, which needs no preflight) are refused unless they carry the key header.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from cellsearch.service.access import keys as auth
from cellsearch.service.access.keys import OPEN, Principal, Role
from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.errors import Forbidden, NotAuthenticated
from cellsearch.service.settings import Settings

bearer_scheme = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="An API key: `Authorization: Bearer KEY`."
)
header_scheme = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="An API key."
)
cookie_scheme = APIKeyCookie(
    name=auth.COOKIE_NAME,
    auto_error=False,
    scheme_name="session",
    description="The browser session that `/api/v1/login` starts.",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NO_KEY = (
    "this API requires a key: send it as 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
    "(the CLI: --api-key or CELLSEARCH_API_KEY); an admin creates keys with "
    "`cellsearch keys create`"
)


def keys_required(settings: Settings, engine: EngineDep) -> bool:
    """Whether this deployment requires keys right now (see
    :mod:`cellsearch.service.access.keys`)."""
    return auth.keys_required(settings.auth, settings.host, engine)


def check_same_site(request: Request, has_key_header: bool) -> None:
    """Refuse a state-changing request that a browser sent from another site.

    Browsers send ``Sec-Fetch-Site`` and ``Origin`` with such requests; a request with a
    key header cannot come from a plain cross-site form, so it passes.

    Raises:
        Forbidden: a POST/DELETE from another site without a key header.
    """
    if request.method in SAFE_METHODS or has_key_header:
        return
    fetch_site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    # behind a reverse proxy the browser's host may arrive as X-Forwarded-Host
    hosts = {request.headers.get("host"), request.headers.get("x-forwarded-host")} - {None}
    cross = fetch_site == "cross-site" or (
        origin is not None and urlsplit(origin).netloc not in hosts
    )
    if cross:
        raise Forbidden(
            "cross-site request refused: state-changing requests from another site must "
            "carry the API key header"
        )


def require(role: Role) -> Callable[..., Principal]:
    """A dependency that returns the request's principal if its role allows ``role``."""

    def principal(
        request: Request,
        settings: SettingsDep,
        engine: EngineDep,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
        header_key: Annotated[str | None, Depends(header_scheme)],
        cookie: Annotated[str | None, Depends(cookie_scheme)],
    ) -> Principal:
        key = bearer.credentials if bearer is not None else header_key
        check_same_site(request, has_key_header=key is not None)
        if not keys_required(settings, engine):
            return OPEN
        who = _identify(settings, engine, key, cookie)
        if not who.role.allows(role):
            raise Forbidden(f"key {who.name!r} has the role {who.role}; this needs {role} or above")
        return who

    principal.__name__ = f"require_{role}"
    return principal


def _identify(
    settings: Settings, engine: EngineDep, key: str | None, cookie: str | None
) -> Principal:
    if key is not None:
        found = auth.authenticate(engine, key)
        if found is None:
            raise NotAuthenticated("unknown or revoked API key")
        return found
    if cookie:
        secret = auth.session_secret(engine, _configured_secret(settings))
        found = auth.read_session(engine, secret, cookie)
        if found is None:
            raise NotAuthenticated("session expired or ended: sign in again at /api/v1/login")
        return found
    raise NotAuthenticated(NO_KEY)


def _configured_secret(settings: Settings) -> str | None:
    return settings.session_secret.get_secret_value() if settings.session_secret else None


Reader = Annotated[Principal, Depends(require(Role.READER))]
Submitter = Annotated[Principal, Depends(require(Role.SUBMITTER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
READER = Depends(require(Role.READER))
"""For ``dependencies=[...]`` of a route that reads only."""
