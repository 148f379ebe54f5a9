"""Browser pages with keys: the login form, the signed session cookie, logout."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from cellsearch.service.access import keys as keys_module
from cellsearch.service.access.keys import COOKIE_NAME, create_key, revoke_key, session_secret
from cellsearch.service.store.db import engine_for
from tests.conftest import auth
from tests.search.test_spec import spec_data

V1 = "/api/v1"
PAGE = f"{V1}/studies/adding-t20/report.html"
BROWSER = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def study(api: TestClient, keys: Any) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(), headers=auth(keys["admin"]))
    assert response.status_code == 201


def _login(api: TestClient, key: str, next_path: str = PAGE) -> Any:
    return api.post(f"{V1}/login", data={"key": key, "next": next_path}, follow_redirects=False)


def test_a_browser_without_a_session_is_sent_to_the_form_and_back(
    api: TestClient, study: None, keys: Any
) -> None:
    page = api.get(PAGE, headers=BROWSER, follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"{V1}/login?next={PAGE}"
    form = api.get(page.headers["location"])
    assert form.status_code == 200 and 'name="key"' in form.text and f'value="{PAGE}"' in form.text
    assert api.get(PAGE).status_code == 401  # a program gets its 401, not a redirect

    signed_in = _login(api, keys["reader"])
    assert signed_in.status_code == 303 and signed_in.headers["location"] == PAGE
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert keys["reader"] not in cookie  # the key never goes into the cookie
    shown = api.get(PAGE, headers=BROWSER)
    assert shown.status_code == 200 and "adding-t20" in shown.text
    assert api.get(f"{V1}/whoami").json() == {
        "name": "reader", "role": "reader", "keys_required": True,
    }  # fmt: skip


def test_a_session_carries_its_role(api: TestClient, study: None, keys: Any) -> None:
    _login(api, keys["reader"])
    refused = api.post(f"{V1}/studies/adding-t20/cancel", headers={"Origin": "http://testserver"})
    assert refused.status_code == 403 and "needs submitter" in refused.json()["detail"]


def test_logout_ends_the_session(api: TestClient, study: None, keys: Any) -> None:
    _login(api, keys["reader"])
    assert api.get(PAGE).status_code == 200
    out = api.post(f"{V1}/logout", follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == f"{V1}/login"
    assert "Max-Age=0" in out.headers["set-cookie"] or "expires=" in out.headers["set-cookie"]
    assert api.get(PAGE).status_code == 401


def test_wrong_keys_forged_expired_and_revoked_sessions_fail(
    api: TestClient, study: None, keys: Any, migrated: Any
) -> None:
    wrong = _login(api, "csk_" + "x" * 43)
    assert wrong.status_code == 401 and "Unknown or revoked key" in wrong.text
    assert COOKIE_NAME not in api.cookies

    _login(api, keys["reader"])
    value = api.cookies[COOKIE_NAME]
    key_id, fragment, expiry, signature = value.split(".")
    for forged in (
        f"{key_id}.{fragment}.{int(expiry) + 10**6}.{signature}",  # a longer life
        f"{int(key_id) + 1}.{fragment}.{expiry}.{signature}",  # another key
        f"{key_id}.{fragment}.{expiry}.{'0' * 64}",
        "not-a-session",
    ):
        api.cookies.set(COOKIE_NAME, forged)
        response = api.get(PAGE)
        assert response.status_code == 401 and "sign in again" in response.json()["detail"]

    engine = engine_for(migrated)
    record = next(r for r in keys_module.list_keys(engine) if r.name == "reader")
    secret = session_secret(engine, None)
    api.cookies.set(COOKIE_NAME, keys_module.sign_session(secret, record, lifetime_s=-1))
    assert api.get(PAGE).status_code == 401  # expired
    api.cookies.set(COOKIE_NAME, keys_module.sign_session(secret, record, lifetime_s=60))
    assert api.get(PAGE).status_code == 200
    revoke_key(engine, "reader")
    assert api.get(PAGE).status_code == 401  # its key revoked: the session ends at once


def test_the_secret_is_generated_once_and_shared(migrated: Any) -> None:
    engine = engine_for(migrated)
    first = session_secret(engine, None)
    keys_module._secrets.clear()  # another API process on the same database
    assert session_secret(engine, None) == first and len(first) == 64
    assert session_secret(engine, "s" * 40) == b"s" * 40  # CELLSEARCH_SESSION_SECRET wins
    record = create_key(engine, name="k", role="reader")[0]
    cookie = keys_module.sign_session(b"another secret", record, lifetime_s=60)
    assert keys_module.read_session(engine, first, cookie) is None


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example", "\\\\evil", ""])
def test_login_goes_back_only_to_a_local_path(api: TestClient, keys: Any, target: str) -> None:
    assert _login(api, keys["reader"], next_path=target).headers["location"] == "/docs"


def test_a_cross_site_login_is_refused(api: TestClient, keys: Any) -> None:
    response = api.post(
        f"{V1}/login",
        data={"key": keys["reader"]},
        headers={"Origin": "http://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and COOKIE_NAME not in api.cookies
