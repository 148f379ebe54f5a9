"""The read lane: study and trial reads run at most ``read_threads`` at once in an API
process, and slow work outside the lane is never held up by it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cellsearch.service.api.app import create_app
from cellsearch.service.api.deps import read_threads
from cellsearch.service.settings import Settings, get_settings
from cellsearch.service.studies import operations as ops
from tests.search.test_spec import spec_data
from tests.service.test_big_studies import CELLS, V1, _finish, _study

PAGE = f"{V1}/studies/adding-t20/trials"


class Gate:
    """Wraps ``ops.trial_page``: counts how many calls run at once. Each call waits until
    ``hold`` is set, if it is given; else until more than ``expected`` calls run at once
    (which a working lane never lets happen) or half a second has passed."""

    def __init__(self, real: Callable[..., bytes]) -> None:
        self.real = real
        self.expected = 1
        self.running = 0
        self.most = 0
        self.entered = threading.Event()
        self.hold: threading.Event | None = None
        self._changed = threading.Condition()

    def __call__(self, **kwargs: Any) -> bytes:
        with self._changed:
            self.running += 1
            self.most = max(self.most, self.running)
            self._changed.notify_all()
        self.entered.set()
        try:
            if self.hold is not None:
                assert self.hold.wait(10), "the test never released the read"
            else:
                with self._changed:
                    self._changed.wait_for(lambda: self.running > self.expected, 0.5)
            return self.real(**kwargs)
        finally:
            with self._changed:
                self.running -= 1


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    wrapped = Gate(ops.trial_page)
    monkeypatch.setattr(ops, "trial_page", wrapped)
    yield wrapped


def _with_threads(api: TestClient, migrated: Settings, threads: int | None) -> None:
    changed = migrated.model_copy(update={"api_read_threads": threads})
    api.app.dependency_overrides[get_settings] = lambda: changed  # type: ignore[attr-defined]


def _pages_at_once(api: TestClient, n: int) -> list[int]:
    statuses: list[int] = []

    def ask(offset: int) -> None:
        statuses.append(api.get(PAGE, params={"offset": offset, "limit": 1}).status_code)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


@pytest.mark.parametrize("threads", [1, 3])
def test_reads_run_at_most_the_lanes_size_at_once(
    api: TestClient, migrated: Settings, gate: Gate, threads: int
) -> None:
    study = _study(api, migrated)
    for i in range(6):
        _finish(study, CELLS[i % 2], 0.1 * (i + 1))
    _with_threads(api, migrated, threads)
    gate.expected = threads
    assert _pages_at_once(api, 6) == [200] * 6
    assert gate.most == threads  # 6 requests at once, each held: the lane is full


def test_a_held_read_does_not_hold_up_work_outside_the_lane(
    api: TestClient, migrated: Settings, gate: Gate
) -> None:
    study = _study(api, migrated)
    _finish(study, "gru", 0.1)
    _with_threads(api, migrated, 1)
    gate.hold = threading.Event()
    waiting = threading.Thread(target=_pages_at_once, args=(api, 1))
    waiting.start()
    try:
        assert gate.entered.wait(10)  # the page holds the only place in the lane
        # the report (whose first build is slow) and the health check are outside it
        assert api.get(f"{V1}/studies/adding-t20/report").status_code == 200
        assert api.get(f"{V1}/healthz").status_code == 200
        assert gate.running == 1
    finally:
        gate.hold.set()
        waiting.join(30)
    assert gate.running == 0 and gate.most == 1


def test_the_lane_is_free_before_the_response_is_sent(migrated: Settings) -> None:
    """A client that does not read its response must not keep others out of the lane."""
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: migrated
    held: list[int | None] = []

    async def watch(scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                lane = getattr(app.state, "read_lane", None)
                held.append(None if lane is None else lane.borrowed_tokens)
            await send(message)

        await app(scope, receive, sending)

    with TestClient(watch) as client:
        assert client.post(f"{V1}/studies", json=spec_data()).status_code == 201
        for path in (PAGE, f"{V1}/studies/adding-t20", f"{V1}/studies"):
            assert client.get(path).status_code == 200
    assert held[-3:] == [0, 0, 0]


def test_the_lanes_size_follows_the_setting_or_the_database() -> None:
    assert read_threads(Settings(database_url="sqlite:///x.db")) == 1
    assert read_threads(Settings(database_url="postgresql+psycopg://u@h/db")) == 2
    assert read_threads(Settings(database_url="sqlite:///x.db", api_read_threads=4)) == 4


@pytest.mark.parametrize("bad", ["0", "65", "two"])
def test_a_lane_size_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("CELLSEARCH_API_READ_THREADS", bad)
    with pytest.raises(ValueError, match="api_read_threads"):
        Settings()
