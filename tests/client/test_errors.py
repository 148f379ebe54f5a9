"""Each kind of failure is one typed error carrying the server's message and field."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from cellsearch.client import (
    ApiError,
    ApiUnavailable,
    ApiUnreachable,
    AuthenticationError,
    Client,
    ClientError,
    Conflict,
    InvalidRequest,
    InvalidUrl,
    NotFound,
    NotTheApi,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
)

Handler = Callable[[httpx.Request], httpx.Response]


def client_of(handler: Handler, api_key: str = "") -> Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return Client("http://api:8000", api_key=api_key, http=http)


def answer(status: int, body: object) -> Handler:
    return lambda request: httpx.Response(status, json=body)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(403, PermissionDenied), (404, NotFound), (409, Conflict), (413, PayloadTooLarge),
     (500, ApiError)],
)  # fmt: skip
def test_a_sentence_detail_is_the_errors_message(status: int, kind: type[ApiError]) -> None:
    with pytest.raises(kind) as info:
        client_of(answer(status, {"detail": "study 'x' not found"})).get("x")
    assert info.value.status_code == status and info.value.detail == "study 'x' not found"
    assert "study 'x' not found" in str(info.value)
    assert info.value.response is not None and not isinstance(info.value, ApiUnavailable)


def test_a_422_names_each_field() -> None:
    detail = [
        {"loc": ["body", "space", "hidden_size"], "msg": "5000 exceeds the limit", "type": "x"},
        {"loc": ["body", "name"], "msg": "String should match pattern", "type": "y"},
    ]
    with pytest.raises(InvalidRequest) as info:
        client_of(answer(422, {"detail": detail})).submit({"name": "x"})
    error = info.value
    assert error.field == "space.hidden_size" and error.fields == ["space.hidden_size", "name"]
    assert error.errors[1].msg == "String should match pattern" and error.errors[1].type == "y"
    assert str(error).splitlines() == [
        "HTTP 422: invalid spec",
        "  space.hidden_size: 5000 exceeds the limit",
        "  name: String should match pattern",
    ]


def test_refusals_say_whether_a_key_was_sent() -> None:
    seen: list[str | None] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"detail": "unknown or revoked API key"})

    with pytest.raises(AuthenticationError) as keyed:
        client_of(refuse, api_key="csk_x").list()
    assert keyed.value.key_sent and "not valid here" in str(keyed.value)
    with pytest.raises(AuthenticationError) as bare:
        client_of(refuse).list()
    assert not bare.value.key_sent and "CELLSEARCH_API_KEY" in str(bare.value)
    assert seen == ["Bearer csk_x", None]


def test_the_key_comes_from_the_environment_unless_given(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"name": None, "role": "admin", "keys_required": False})

    monkeypatch.setenv("CELLSEARCH_API_KEY", "csk_env")
    monkeypatch.setenv("CELLSEARCH_API_URL", "http://elsewhere:1")
    http = httpx.Client(transport=httpx.MockTransport(record))
    assert Client(http=http).url == "http://elsewhere:1"
    Client(http=http).whoami()
    Client(api_key="csk_given", http=http).whoami()
    Client(api_key="", http=http).whoami()
    assert seen == ["Bearer csk_env", "Bearer csk_given", None]


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_service_restarting_is_worth_retrying(status: int) -> None:
    with pytest.raises(ServiceUnavailable) as info:
        client_of(answer(status, {"detail": "the database is unavailable"})).list()
    assert isinstance(info.value, ApiUnavailable) and info.value.status_code == status


def test_an_html_page_or_a_missing_route_is_not_the_api() -> None:
    page = "<html><head><title>Optuna Dashboard</title></head><body>x</body></html>"
    headers = {"content-type": "text/html"}
    html = client_of(lambda r: httpx.Response(404, text=page, headers=headers))
    with pytest.raises(NotTheApi) as info:
        html.list()
    assert "an HTML page titled 'Optuna Dashboard'" in str(info.value)
    with pytest.raises(NotTheApi):
        client_of(answer(404, {"detail": "Not Found"})).get("x")
    with pytest.raises(NotTheApi):  # a 200 that is no JSON
        client_of(lambda r: httpx.Response(200, text="hello")).list()


def test_no_answer_names_the_url() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ApiUnreachable) as info:
        client_of(refused).get("x")
    assert info.value.url == "http://api:8000/api/v1/studies/x"
    assert isinstance(info.value, ApiUnavailable) and "connection refused" in str(info.value)


def test_a_url_without_a_scheme_is_refused_at_once() -> None:
    with pytest.raises(InvalidUrl) as info:
        Client("127.0.0.1:8000")
    assert "write it as http://127.0.0.1:8000" in str(info.value)
    assert issubclass(InvalidUrl, ClientError)
