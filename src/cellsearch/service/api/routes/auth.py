"""Signing a browser in with an API key: a login form, the session cookie, logout.

The form posts a key once; the answer sets an HttpOnly, SameSite=Strict cookie signed by
the server (:mod:`cellsearch.service.access.keys`), which the report pages then carry. A page
requested without a session is sent here (:func:`login_redirect`) and back after.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel

from cellsearch.service.access import keys as auth
from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.security import Reader, check_same_site, keys_required

router = APIRouter(tags=["auth"])
LOGIN_PATH = "/api/v1/login"
DEFAULT_NEXT = "/docs"

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cellsearch: sign in</title>
<style>body{{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
input{{font:inherit;width:100%;padding:.4rem;margin:.4rem 0}}
button{{font:inherit;padding:.4rem 1rem}}
.note{{color:#555}}.error{{color:#a00}}</style></head>
<body><h1>cellsearch</h1>{message}
<form method="post" action="{action}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" required autofocus>
<input type="hidden" name="next" value="{next}">
<button type="submit">Sign in</button></form>
<p class="note">An admin creates keys with <code>cellsearch keys create --name NAME
--role reader</code>. The key stays in this browser only as a signed session cookie.</p>
</body></html>"""


class WhoAmI(BaseModel):
    """Who the request's key (or session) is, and whether this server requires keys."""

    name: str | None
    role: str
    keys_required: bool


def safe_next(target: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_NEXT
    return target


def _page(next_path: str, message: str = "", status_code: int = 200) -> HTMLResponse:
    body = _PAGE.format(message=message, action=LOGIN_PATH, next=html.escape(next_path, quote=True))
    return HTMLResponse(body, status_code=status_code, headers={"Cache-Control": "no-store"})


@router.get("/login", include_in_schema=False)
def login_form(
    settings: SettingsDep,
    engine: EngineDep,
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> HTMLResponse:
    """The sign-in form."""
    note = ""
    if not keys_required(settings, engine):
        note = '<p class="note">This server does not require keys at the moment.</p>'
    return _page(safe_next(next), note)


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    key: Annotated[str, Form(max_length=auth.MAX_KEY_LENGTH)],
    next: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    """Check the key and start a session: a signed cookie, then back where the user was."""
    check_same_site(request, has_key_header=False)
    record = auth.key_record(engine, key.strip())
    if record is None:
        message = '<p class="error">Unknown or revoked key.</p>'
        return _page(safe_next(next), message, status_code=401)
    secret = auth.session_secret(
        engine, settings.session_secret.get_secret_value() if settings.session_secret else None
    )
    lifetime = settings.session_hours * 3600
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        auth.COOKIE_NAME,
        auth.sign_session(secret, record, lifetime_s=lifetime),
        max_age=int(lifetime),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request) -> Response:
    """End the browser's session (the cookie is cleared)."""
    check_same_site(request, has_key_header=False)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    response.delete_cookie(auth.COOKIE_NAME, path="/", httponly=True, samesite="strict")
    return response


@router.get("/whoami", response_model=WhoAmI, responses=errors(401, 403, 503))
def whoami(principal: Reader, settings: SettingsDep, engine: EngineDep) -> WhoAmI:
    """The name and role of the request's key (``name`` is null while the API is open)."""
    return WhoAmI(
        name=principal.name,
        role=str(principal.role),
        keys_required=keys_required(settings, engine),
    )


def wants_page(request: Request) -> bool:
    """Whether a refused request came from a browser asking for a page."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def login_redirect(request: Request) -> RedirectResponse:
    """Send a browser to the login form, and back to this page after."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", status_code=303)
