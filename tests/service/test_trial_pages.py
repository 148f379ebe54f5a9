"""Trial pages and change markers under load: finished pages are kept, unfinished ones
read each time, and a study's marker is reused for at most its age."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution
from sqlalchemy import create_engine

from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.service.api.deps import get_markers, get_page_cache, get_selection_cache
from cellsearch.service.store.marker_cache import MarkerCache, MarkerMemo
from tests.service.test_big_studies import CELLS, V1, _finish, _study

PAGE = f"{V1}/studies/adding-t20/trials"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pages(api: TestClient) -> MarkerCache[Any]:
    """A fresh page cache for the test's app, so that reads can be counted."""
    fresh: MarkerCache[Any] = MarkerCache(8)
    api.app.dependency_overrides[get_page_cache] = lambda: fresh  # type: ignore[attr-defined]
    return fresh


def _ask(study: optuna.Study, cell: str) -> optuna.Trial:
    study.enqueue_trial({"cell_type": cell})
    trial = study.ask({"cell_type": CategoricalDistribution(CELLS)})
    trial.set_user_attr("cell_type", cell)
    return trial


def test_a_page_of_finished_trials_is_read_once_while_the_study_is_unchanged(
    api: TestClient, migrated: Any, pages: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    for i in range(4):
        _finish(study, CELLS[i % 2], 0.1 * (i + 1))
    first = api.get(PAGE, params={"limit": 3}).json()
    assert [t["number"] for t in first["items"]] == [0, 1, 2] and first["total"] == 4
    assert api.get(PAGE, params={"limit": 3}).json() == first and pages.builds == 1
    gru = api.get(PAGE, params={"cell_type": "gru", "state": "complete"}).json()
    assert [t["number"] for t in gru["items"]] == [1, 3] and pages.builds == 2  # its own key

    _finish(study, "gru", 0.05)  # the study changed: the count and the filter move on
    after = api.get(PAGE, params={"limit": 3}).json()
    assert after["items"] == first["items"] and after["total"] == 5 and pages.builds == 3
    gru = api.get(PAGE, params={"cell_type": "gru", "state": "complete"}).json()
    assert [t["number"] for t in gru["items"]] == [1, 3, 4] and pages.builds == 4


def test_a_page_with_a_running_trial_is_read_every_time(
    api: TestClient, migrated: Any, pages: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    _finish(study, "lstm", 0.3)
    running = _ask(study, "gru")
    running.report(0.9, 1)
    first = api.get(PAGE).json()["items"]
    assert first[1]["state"] == "running" and first[1]["learning_curve"] == {"1": 0.9}
    running.report(0.7, 2)  # a new epoch changes no marker, but the page shows it
    second = api.get(PAGE).json()["items"]
    assert second[1]["learning_curve"] == {"1": 0.9, "2": 0.7}
    assert pages.builds == 2 and len(pages) == 0
    finished = api.get(PAGE, params={"state": "complete"}).json()["items"]
    assert [t["number"] for t in finished] == [0] and len(pages) == 1  # settled: kept


def test_new_pages_of_a_cell_types_finished_trials_share_one_selection(
    api: TestClient, migrated: Any, pages: MarkerCache[Any]
) -> None:
    selections: MarkerCache[Any] = MarkerCache(4)
    api.app.dependency_overrides[get_selection_cache] = lambda: selections  # type: ignore[attr-defined]
    study = _study(api, migrated)
    for i in range(9):
        _finish(study, CELLS[i % 3 == 0], 0.1 * (i + 1))  # gru: 0, 3, 6; lstm: the rest
    running = _ask(study, "gru")
    gru = {"cell_type": "gru", "state": ["complete", "pruned"], "limit": 2}
    first = api.get(PAGE, params={**gru, "offset": 0}).json()
    second = api.get(PAGE, params={**gru, "offset": 2}).json()
    assert [t["number"] for t in first["items"] + second["items"]] == [0, 3, 6]
    assert first["total"] == second["total"] == 3 and selections.builds == 1  # one selection
    everything = api.get(PAGE, params={"cell_type": "gru"}).json()  # the running one too
    assert [t["number"] for t in everything["items"]] == [0, 3, 6, 9] and selections.builds == 1

    study.tell(running, 0.05)  # the study changed: the selection is made again
    third = api.get(PAGE, params={**gru, "offset": 2}).json()
    assert [t["number"] for t in third["items"]] == [6, 9] and third["total"] == 4
    assert selections.builds == 2


def test_a_recreated_study_of_the_same_name_gets_fresh_pages(
    api: TestClient, migrated: Any, pages: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    _finish(study, "lstm", 0.3)
    assert api.get(PAGE).json()["items"][0]["cell_type"] == "lstm"
    assert api.delete(f"{V1}/studies/adding-t20").status_code == 204
    assert api.get(PAGE).status_code == 404
    study = _study(api, migrated)
    _finish(study, "gru", 0.3)
    assert api.get(PAGE).json()["items"][0]["cell_type"] == "gru"


def test_markers_are_reused_for_their_age_then_read_again(migrated: Any) -> None:
    engine = create_engine(migrated.database_url)
    study = optuna.create_study(study_name="memo", storage=migrated.database_url)
    clock = Clock()
    memo = MarkerMemo(1.0, clock=clock)
    with engine.connect() as conn:
        study_id = bulk_read.find_study_id(conn, "memo")
        assert study_id is not None
        empty = memo.marker(conn, "db", study_id)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    with engine.connect() as conn:
        clock.now += 0.9
        assert memo.marker(conn, "db", study_id) == empty and memo.reads == 1  # reused
        assert memo.marker(conn, "other-db", study_id) != empty  # another database
        clock.now += 0.1  # the age reached: read again
        assert memo.marker(conn, "db", study_id) != empty and memo.reads == 3
        assert memo.markers(conn, "db", [study_id]) == {study_id: memo.marker(conn, "db", study_id)}
    engine.dispose()


def test_a_memo_of_age_zero_reads_every_time_and_a_full_one_drops_the_oldest(
    migrated: Any,
) -> None:
    engine = create_engine(migrated.database_url)
    for name in ("a", "b", "c"):
        optuna.create_study(study_name=name, storage=migrated.database_url)
    clock = Clock()
    with engine.connect() as conn:
        ids = [bulk_read.find_study_id(conn, name) or -1 for name in ("a", "b", "c")]
        fresh = MarkerMemo(0.0, clock=clock)
        for _ in range(3):
            fresh.marker(conn, "db", ids[0])
        assert fresh.reads == 3
        small = MarkerMemo(10.0, max_studies=2, clock=clock)
        assert set(small.markers(conn, "db", ids)) == set(ids) and small.reads == 1
        small.marker(conn, "db", ids[2])  # kept: among the two most recent
        assert small.reads == 1
        small.marker(conn, "db", ids[0])  # dropped when the memo was full: read again
        assert small.reads == 2
    engine.dispose()


def test_the_api_serves_counts_a_marker_age_old_then_the_new_ones(
    api: TestClient, migrated: Any
) -> None:
    study = _study(api, migrated)
    clock = Clock()
    memo = MarkerMemo(1.0, clock=clock)
    api.app.dependency_overrides[get_markers] = lambda: memo  # type: ignore[attr-defined]
    _finish(study, "lstm", 0.3)
    assert api.get(f"{V1}/studies/adding-t20").json()["counts"]["complete"] == 1
    _finish(study, "gru", 0.2)
    lagging = api.get(f"{V1}/studies/adding-t20").json()
    assert lagging["counts"]["complete"] == 1  # within the age: the marker was reused
    clock.now += 1.0
    assert api.get(f"{V1}/studies/adding-t20").json()["counts"]["complete"] == 2
    report = api.get(f"{V1}/studies/adding-t20/report").json()
    assert report["study"]["n_finished"] == 2
    listed = api.get(f"{V1}/studies").json()["items"][0]
    assert listed["counts"]["complete"] == 2


def test_the_marker_age_is_a_setting_with_bounds(migrated: Any) -> None:
    from pydantic import ValidationError

    from cellsearch.service.settings import Settings

    assert (
        Settings(database_url=migrated.database_url, marker_max_age_s=0.5).marker_max_age_s == 0.5
    )
    for bad in (-1, 61):
        with pytest.raises(ValidationError, match="marker_max_age_s"):
            Settings(database_url=migrated.database_url, marker_max_age_s=bad)


def test_the_started_api_keeps_its_startup_objects_out_of_full_collections(
    migrated: Any,
) -> None:
    import gc

    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import get_settings

    app = create_app()
    app.dependency_overrides[get_settings] = lambda: migrated
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        assert gc.get_freeze_count() > 10_000  # the modules, the app and its routes
        assert client.get(f"{V1}/healthz").status_code == 200
    assert gc.get_freeze_count() == 0  # handed back at shutdown
