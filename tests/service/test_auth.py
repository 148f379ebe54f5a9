"""API keys with roles: storage, when keys are required, who may do what, refusals."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from cellsearch.service.access import keys as keys_module
from cellsearch.service.access.keys import (
    KEY_PREFIX,
    authenticate,
    create_key,
    is_loopback,
    keys_required,
    list_keys,
    revoke_key,
    startup_line,
)
from cellsearch.service.errors import Conflict, NotFound
from cellsearch.service.store.db import engine_for
from tests.conftest import auth
from tests.search.test_spec import spec_data

V1 = "/api/v1"


def test_a_key_is_random_prefixed_and_stored_only_as_a_digest(migrated: Any) -> None:
    engine = engine_for(migrated)
    record, key = create_key(engine, name="ci", role="submitter")
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43  # 32 bytes, base64url
    other = create_key(engine, name="ci2", role="reader")[1]
    assert other != key and other[:12] != key[:12]
    assert record.digest == hashlib.sha256(key.encode()).hexdigest()
    assert record.prefix == key[:12]
    with engine.connect() as connection:
        dumped = " ".join(
            str(v)
            for row in connection.execute(text("SELECT * FROM cellsearch_api_keys"))
            for v in row
        )
    assert key not in dumped and key[12:20] not in dumped  # only the prefix and the digest


def test_names_roles_and_duplicates_are_checked(migrated: Any) -> None:
    engine = engine_for(migrated)
    create_key(engine, name="alice", role="admin")
    with pytest.raises(Conflict, match="already exists"):
        create_key(engine, name="alice", role="reader")
    with pytest.raises(ValueError, match="unknown role 'root'"):
        create_key(engine, name="bob", role="root")
    with pytest.raises(ValueError, match="invalid key name"):
        create_key(engine, name="bob smith", role="reader")


def test_authenticate_compares_the_whole_key_and_revocation_is_immediate(migrated: Any) -> None:
    engine = engine_for(migrated)
    _, key = create_key(engine, name="w", role="reader")
    who = authenticate(engine, key)
    assert who is not None and (who.name, who.role) == ("w", "reader")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")  # same prefix, other digest
    assert authenticate(engine, forged) is None
    assert authenticate(engine, "csk_short") is None and authenticate(engine, "x" * 500) is None
    [listed] = list_keys(engine)
    assert listed.last_used_at is not None
    revoke_key(engine, "w")
    assert authenticate(engine, key) is None
    with pytest.raises(Conflict, match="already revoked"):
        revoke_key(engine, "w")
    with pytest.raises(NotFound):
        revoke_key(engine, "nobody")


def test_a_busy_database_does_not_refuse_a_key_for_its_last_use(
    migrated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cellsearch.service.errors import StorageUnavailable

    engine = engine_for(migrated)
    _, key = create_key(engine, name="w", role="reader")

    def busy(*_: Any, **__: Any) -> None:
        raise StorageUnavailable("database is locked")

    monkeypatch.setattr(keys_module, "update", busy)
    who = authenticate(engine, key)
    assert who is not None and who.name == "w"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.20", False),
     ("example.org", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_when_keys_are_required(migrated: Any) -> None:
    engine = engine_for(migrated)
    assert not keys_required("auto", "127.0.0.1", engine)  # make run on a laptop: open
    assert keys_required("auto", "0.0.0.0", engine)
    assert keys_required("required", "127.0.0.1", engine)
    assert not keys_required("off", "0.0.0.0", engine)
    create_key(engine, name="first", role="admin")
    assert keys_required("auto", "127.0.0.1", engine)  # once a key exists
    revoke_key(engine, "first")
    assert keys_required("auto", "127.0.0.1", engine)  # revoking the last does not reopen


def test_startup_line_says_whether_the_api_is_open(migrated: Any) -> None:
    engine = engine_for(migrated)
    assert "OPEN on this loopback address" in startup_line("auto", "127.0.0.1", engine)
    with pytest.raises(PermissionError) as refused:
        startup_line("auto", "0.0.0.0", engine)
    assert "cellsearch keys create" in str(refused.value)
    assert "CELLSEARCH_AUTH=off" in str(refused.value)
    assert "OPEN to anyone" in startup_line("off", "0.0.0.0", engine)
    assert "none exists yet" in startup_line("required", "0.0.0.0", engine)
    create_key(engine, name="first", role="admin")
    assert "required" in startup_line("auto", "0.0.0.0", engine)


# --- through the API ---------------------------------------------------------------------


def _create(api: TestClient, key: str, name: str = "adding-t20") -> Any:
    return api.post(f"{V1}/studies", json=spec_data(name=name), headers=auth(key))


def test_no_key_or_a_bad_one_is_401_and_health_stays_open(api: TestClient, keys: Any) -> None:
    response = api.get(f"{V1}/studies")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "requires a key" in response.json()["detail"]
    assert api.get(f"{V1}/studies", headers=auth("csk_" + "x" * 43)).status_code == 401
    assert api.get(f"{V1}/studies", headers={"X-API-Key": keys["reader"]}).status_code == 200
    assert api.get(f"{V1}/studies", headers=auth(keys["reader"])).status_code == 200
    assert api.get(f"{V1}/healthz").status_code == 200
    assert api.get(f"{V1}/readyz").status_code == 200


def test_a_revoked_key_fails_at_once(api: TestClient, keys: Any, migrated: Any) -> None:
    assert api.get(f"{V1}/studies", headers=auth(keys["reader"])).status_code == 200
    revoke_key(engine_for(migrated), "reader")
    response = api.get(f"{V1}/studies", headers=auth(keys["reader"]))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/studies"), ("post", "/studies/{name}/pause"), ("post", "/studies/{name}/cancel"),
     ("delete", "/studies/{name}"), ("get", "/workers"), ("post", "/datasets")],
)  # fmt: skip
def test_a_reader_may_only_read_and_refusals_reveal_nothing(
    api: TestClient, keys: Any, method: str, path: str
) -> None:
    assert _create(api, keys["admin"], name="exists").status_code == 201
    answers = []
    for name in ("exists", "missing"):
        url = f"{V1}{path.format(name=name)}"
        kwargs: dict[str, Any] = {"json": spec_data()} if path == "/studies" else {}
        for headers in ({}, auth(keys["reader"])):
            response = api.request(method.upper(), url, headers=headers, **kwargs)
            answers.append((response.status_code, response.json()))
    # no key: 401; a reader: 403; the same body whether the study exists or not
    assert [a[0] for a in answers] == [401, 403, 401, 403]
    assert answers[0] == answers[2] and answers[1] == answers[3]
    if path != "/workers":
        assert "needs submitter" in answers[1][1]["detail"]


def test_a_submitter_acts_on_what_it_created(api: TestClient, keys: Any, migrated: Any) -> None:
    other = create_key(engine_for(migrated), name="other", role="submitter")[1]
    mine = _create(api, keys["submitter"], name="mine").json()
    assert mine["created_by"] == "submitter"
    assert _create(api, other, name="theirs").json()["created_by"] == "other"
    assert _create(api, keys["admin"], name="admins").status_code == 201
    me = auth(keys["submitter"])
    assert api.post(f"{V1}/studies/mine/pause", headers=me).json()["status"] == "paused"
    assert api.post(f"{V1}/studies/mine/resume", headers=me).json()["status"] == "running"
    for name in ("theirs", "admins"):
        refused = api.post(f"{V1}/studies/{name}/cancel", headers=me)
        assert refused.status_code == 403 and "its own studies" in refused.json()["detail"]
        assert api.delete(f"{V1}/studies/{name}", headers=me).status_code == 403
    # untouched by the refusals: still running (shown as queued behind the older study)
    assert api.get(f"{V1}/studies/theirs", headers=me).json()["status"] in ("running", "queued")
    assert api.delete(f"{V1}/studies/mine", headers=me).status_code == 204
    assert api.post(f"{V1}/studies/theirs/cancel", headers=auth(keys["admin"])).status_code == 200
    assert api.delete(f"{V1}/studies/theirs", headers=auth(keys["admin"])).status_code == 204
    assert api.get(f"{V1}/workers", headers=me).status_code == 403
    assert api.get(f"{V1}/workers", headers=auth(keys["admin"])).json()["items"] == []


def test_data_sets_record_their_uploader(api: TestClient, keys: Any) -> None:
    from tests.service.test_datasets import classification_npz, upload

    def up(key: str, name: str) -> Any:
        files = {"file": ("d.npz", classification_npz())}
        return api.post(f"{V1}/datasets", files=files, data={"name": name}, headers=auth(key))

    mine = up(keys["submitter"], "mine").json()
    assert mine["created_by"] == "submitter"
    theirs = up(keys["admin"], "theirs").json()
    me = auth(keys["submitter"])
    assert api.delete(f"{V1}/datasets/{theirs['id']}", headers=me).status_code == 403
    assert api.delete(f"{V1}/datasets/{mine['id']}", headers=me).status_code == 204
    assert upload(api, classification_npz()).status_code == 401  # no key


def test_an_anonymous_upload_is_refused_before_its_body_is_read(api: TestClient, keys: Any) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": "10000000000"}
    response = api.post(f"{V1}/datasets", content=b"", headers=headers)
    assert response.status_code == 401  # not 413: the claimed 10 GB were never awaited
    assert "requires a key" in response.json()["detail"]
    with_key = api.post(
        f"{V1}/datasets", content=b"", headers={**headers, **auth(keys["submitter"])}
    )
    assert with_key.status_code == 413  # a key: on to the size limit


def test_auto_mode_closes_the_api_when_the_first_key_is_made(
    api: TestClient, migrated: Any
) -> None:
    assert api.get(f"{V1}/studies").status_code == 200  # loopback, no key: open
    create_key(engine_for(migrated), name="first", role="admin")
    assert api.get(f"{V1}/studies").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}],
)
def test_cross_site_posts_without_the_key_header_are_refused(
    api: TestClient, headers: dict[str, str]
) -> None:
    """A page on another site can post a form to a local API (no preflight for that):
    without the key header such a request is refused, open API or not."""
    assert api.post(f"{V1}/studies", json=spec_data()).status_code == 201
    refused = api.post(f"{V1}/studies/adding-t20/cancel", headers=headers)
    assert refused.status_code == 403 and "cross-site" in refused.json()["detail"]
    same_site = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    assert api.post(f"{V1}/studies/adding-t20/pause", headers=same_site).status_code == 200
    proxied = {"Origin": "https://cs.example.org", "X-Forwarded-Host": "cs.example.org"}
    assert api.post(f"{V1}/studies/adding-t20/resume", headers=proxied).status_code == 200


def test_cross_site_with_the_key_header_passes(api: TestClient, keys: Any) -> None:
    headers = {"Origin": "http://elsewhere.example", **auth(keys["admin"])}
    assert api.post(f"{V1}/studies", json=spec_data(), headers=headers).status_code == 201


def test_openapi_declares_security_as_the_server_behaves(api: TestClient, migrated: Any) -> None:
    operation = api.get("/openapi.json").json()["paths"][f"{V1}/studies"]["post"]
    assert operation["security"][0] == {}  # open: a key is optional
    assert {"bearer", "apiKey", "session"} <= {next(iter(s), "") for s in operation["security"]}
    create_key(engine_for(migrated), name="first", role="admin")
    document = api.get("/openapi.json").json()
    assert {} not in document["paths"][f"{V1}/studies"]["post"]["security"]
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            if path.endswith(("healthz", "readyz")):
                assert "security" not in op
                continue
            assert {"401", "403", "503"} <= codes, (method, path)
            if "{" in path:
                assert {"404", "422"} <= codes, (method, path)
