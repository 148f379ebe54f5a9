"""Big studies: the report cache and its invalidation, ETags, the bounds of offsets and
limits, the report page's size and the plotly.js asset's cache headers."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import numpy as np
import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from cellsearch.search.report import ReportContext, build_report
from cellsearch.service.api.deps import MAX_OFFSET, get_report_cache
from cellsearch.service.reports import assets
from cellsearch.service.reports.page import render_report_html
from cellsearch.service.store.marker_cache import MarkerCache
from tests.search.test_spec import spec_data
from tests.service.test_report_page import browser  # noqa: F401 (a fixture)

V1 = "/api/v1"
CELLS = ["lstm", "gru"]


@pytest.fixture
def cache(api: TestClient) -> MarkerCache[Any]:
    """A fresh report cache for the test's app, so that builds can be counted."""
    fresh: MarkerCache[Any] = MarkerCache(4)
    api.app.dependency_overrides[get_report_cache] = lambda: fresh  # type: ignore[attr-defined]
    return fresh


def _study(api: TestClient, migrated: Any) -> optuna.Study:
    response = api.post(f"{V1}/studies", json=spec_data(space={"cell_type": CELLS}))
    assert response.status_code == 201, response.text
    return optuna.load_study(study_name="adding-t20", storage=migrated.database_url)


def _finish(study: optuna.Study, cell: str, value: float) -> None:
    study.enqueue_trial({"cell_type": cell})
    trial = study.ask({"cell_type": CategoricalDistribution(CELLS)})
    trial.set_user_attr("cell_type", trial.params["cell_type"])
    trial.report(value + 1, 0)
    study.tell(trial, value)


def _report(api: TestClient, **headers: str) -> Any:
    return api.get(f"{V1}/studies/adding-t20/report", headers=headers)


def test_report_is_built_once_until_a_trial_finishes(
    api: TestClient, migrated: Any, cache: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    for i in range(4):
        _finish(study, CELLS[i % 2], 0.1 * (i + 1))
    first = _report(api).json()
    assert first["study"]["n_finished"] == 4 and cache.builds == 1
    assert _report(api).json() == first and cache.builds == 1  # served from the cache
    assert api.get(f"{V1}/studies/adding-t20/report.html").status_code == 200
    assert cache.builds == 1  # the page is rendered from the same build

    running = study.ask({"cell_type": CategoricalDistribution(CELLS)})
    started = _report(api).json()  # a trial started: its counts changed
    assert cache.builds == 2 and started["study"]["counts"]["running"] == 1
    running.set_user_attr("seconds", 1.0)  # attributes of a running trial: no rebuild
    assert _report(api).json() == started and cache.builds == 2

    study.tell(running, 0.01)  # a trial finished: the report changes
    finished = _report(api).json()
    assert cache.builds == 3 and finished["study"]["n_finished"] == 5
    best = min(c["best"]["value"] for c in finished["cells"] if c["best"])
    assert best == pytest.approx(0.01)

    assert api.post(f"{V1}/studies/adding-t20/pause").status_code == 200
    assert _report(api).json()["study"]["status"] == "paused" and cache.builds == 4


def test_report_etag_gives_304_until_the_study_changes(
    api: TestClient, migrated: Any, cache: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    _finish(study, "lstm", 0.5)
    response = _report(api)
    etag = response.headers["etag"]
    assert response.headers["cache-control"] == "no-cache"
    again = _report(api, **{"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    page = api.get(f"{V1}/studies/adding-t20/report.html")
    assert page.headers["etag"] != etag  # a page is another representation
    assert (
        api.get(
            f"{V1}/studies/adding-t20/report.html", headers={"If-None-Match": page.headers["etag"]}
        ).status_code
        == 304
    )
    _finish(study, "gru", 0.4)
    changed = _report(api, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_deleted_and_recreated_study_gets_a_new_report(
    api: TestClient, migrated: Any, cache: MarkerCache[Any]
) -> None:
    _finish(_study(api, migrated), "lstm", 0.5)
    assert _report(api).json()["study"]["n_finished"] == 1
    assert api.delete(f"{V1}/studies/adding-t20").status_code == 204
    assert _report(api).status_code == 404
    _study(api, migrated)
    assert _report(api).json()["study"]["n_finished"] == 0


def test_summary_and_list_counts_follow_every_change(api: TestClient, migrated: Any) -> None:
    """Counts and the best trial are cached per change marker, never served stale."""
    from cellsearch.service.api.deps import get_summary_cache
    from cellsearch.service.studies.summaries import SummaryCache

    cache = SummaryCache()
    api.app.dependency_overrides[get_summary_cache] = lambda: cache  # type: ignore[attr-defined]
    study = _study(api, migrated)

    def seen() -> tuple[dict[str, Any], dict[str, Any], Any]:
        detail = api.get(f"{V1}/studies/adding-t20").json()
        [listed] = api.get(f"{V1}/studies").json()["items"]
        assert listed["counts"] == detail["counts"]
        return detail["counts"], detail["counts"]["by_cell"], detail["best_trial"]

    counts, _, best = seen()
    assert counts["finished"] == 0 and best is None
    _finish(study, "lstm", 0.5)
    counts, by_cell, best = seen()
    assert (counts["complete"], by_cell, best["value"]) == (1, {"lstm": 1}, 0.5)
    running = study.ask({"cell_type": CategoricalDistribution(CELLS)})
    assert seen()[0]["running"] == 1
    running.set_user_attr("cell_type", running.params["cell_type"])
    study.tell(running, 0.25)
    counts, _, best = seen()
    assert (counts["running"], counts["complete"], best["value"]) == (0, 2, 0.25)
    failed = study.ask({"cell_type": CategoricalDistribution(CELLS)})
    failed.set_user_attr("failure_kind", "stale")  # written before the state, as workers do
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    counts, _, _ = seen()
    assert (counts["requeued"], counts["failed"], counts["finished"]) == (1, 0, 2)
    assert len(cache.counts) == 1


def test_a_study_whose_optuna_study_is_gone_is_404_and_listed_empty(
    api: TestClient, migrated: Any
) -> None:
    """A service record left without its Optuna study (deleted by hand) never causes a 500."""
    _finish(_study(api, migrated), "lstm", 0.5)
    optuna.delete_study(study_name="adding-t20", storage=migrated.database_url)
    for path in ["", "/trials", "/report", "/report.html"]:
        response = api.get(f"{V1}/studies/adding-t20{path}")
        assert response.status_code == 404, (path, response.text)
        assert "'adding-t20' not found" in response.json()["detail"]
    [listed] = api.get(f"{V1}/studies").json()["items"]
    assert listed["counts"]["finished"] == 0


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/studies", {"offset": str(MAX_OFFSET + 1)}),
        ("/studies", {"offset": "15000000000000000000000000000"}),
        ("/studies", {"offset": "1.5e28"}),
        ("/studies", {"limit": "501"}),
        ("/studies", {"limit": str(10**30)}),
        ("/studies/adding-t20/trials", {"offset": str(2**63)}),
        ("/studies/adding-t20/trials", {"limit": str(2**31)}),
    ],
)
def test_offsets_and_limits_beyond_the_database_are_422(
    api: TestClient, migrated: Any, path: str, params: dict[str, str]
) -> None:
    _study(api, migrated)
    response = api.get(f"{V1}{path}", params=params)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(params))]


def test_the_largest_offset_is_an_empty_page(api: TestClient, migrated: Any) -> None:
    _finish(_study(api, migrated), "lstm", 0.5)
    page = api.get(f"{V1}/studies", params={"offset": MAX_OFFSET}).json()
    assert (page["items"], page["total"]) == ([], 1)
    trials = api.get(f"{V1}/studies/adding-t20/trials", params={"offset": MAX_OFFSET}).json()
    assert (trials["items"], trials["total"]) == ([], 1)


def _synthetic_trials(n: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` finished trials as a worker records them (70% complete, 20 epochs each)."""
    rng = np.random.default_rng(0)
    cells = ("lstm", "gru", "rnn_tanh", "mgu", "mingru")
    dists = {
        "cell_type": CategoricalDistribution(cells),
        "hidden_size": IntDistribution(16, 256, log=True),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "dropout": FloatDistribution(0.0, 0.5),
    }
    trials = []
    for number in range(n):
        cell = cells[number % 5]
        hidden = int(rng.integers(16, 257))
        lr = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-1))))
        final = 0.05 + 0.1 * abs(np.log10(lr) + 2.5) + float(rng.gamma(2, 0.01))
        complete = bool(rng.random() < 0.7)
        epochs = 20 if complete else int(rng.integers(2, 6))
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE if complete else optuna.trial.TrialState.PRUNED,
            value=final if complete else None,
            params={"cell_type": cell, "hidden_size": hidden, "learning_rate": lr, "dropout": 0.1},
            distributions=dists,
            intermediate_values={e: final + 0.5 * float(np.exp(-e / 4)) for e in range(epochs)},
            user_attrs={"cell_type": cell, "param_count": 4 * hidden * hidden, "device": "cpu",
                        "seconds_per_epoch": 1.0, "seed": number},
        )  # fmt: skip
        trial.number = number
        trials.append(trial)
    return trials


@pytest.mark.slow
def test_report_page_of_10000_trials_is_under_1_mb_and_links_plotly() -> None:
    context = ReportContext(
        study_name="big", direction="minimize", metric="val_loss", n_trials=10_000,
        cell_types=("lstm", "gru", "rnn_tanh", "mgu", "mingru"), allocation="balanced",
        seed=0, status="completed",
    )  # fmt: skip
    report = build_report(_synthetic_trials(10_000), context)
    page = render_report_html(report, plotly_js=assets.plotly_src())
    assert len(page.encode()) < 1_000_000
    assert page.count("<script") == 2  # the plotly.js link and the figures
    assert f'<script src="{assets.plotly_src()}" charset="utf-8"></script>' in page
    plotly_header = assets.PLOTLY_JS.read_text()[:200]
    assert plotly_header not in page  # not inlined


def test_served_page_links_plotly_and_is_small(
    api: TestClient, migrated: Any, cache: MarkerCache[Any]
) -> None:
    study = _study(api, migrated)
    for i in range(20):
        _finish(study, CELLS[i % 2], 0.01 * i)
    page = api.get(f"{V1}/studies/adding-t20/report.html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert len(page.content) < 100_000  # plotly.js alone is about 4.8 MB
    assert re.findall(r'<script src="([^"]+)"', page.text) == [assets.plotly_src()]
    assert "cdn" not in page.text.lower()


def test_plotly_asset_is_cached_for_a_year_and_revalidates(api: TestClient) -> None:
    url = f"{V1}/assets/{assets.plotly_name()}"
    response = api.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == assets.PLOTLY_JS.read_bytes()
    assert response.headers["etag"] and response.headers["last-modified"]
    again = api.get(url, headers={"If-None-Match": f'"x", W/{response.headers["etag"]}'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == response.headers["cache-control"]
    plain = api.get(f"{V1}/assets/plotly.min.js")  # the old name, for old links
    assert plain.status_code == 200 and plain.headers["cache-control"] == "public, max-age=86400"
    for missing in ["plotly-000000000000.min.js", "other.js", "..%2Fsettings.py"]:
        gone = api.get(f"{V1}/assets/{missing}")
        assert gone.status_code == 404 and "not found" in gone.json()["detail"].lower()


def test_cache_keeps_the_most_recently_used_studies() -> None:
    cache: MarkerCache[str] = MarkerCache(2)
    assert cache.get("a", 1, lambda: "a1") == "a1"
    assert cache.get("b", 1, lambda: "b1") == "b1"
    assert cache.get("a", 1, lambda: "never") == "a1"  # a is now the most recent
    assert cache.get("c", 1, lambda: "c1") == "c1"  # drops b
    assert len(cache) == 2 and cache.builds == 3
    assert cache.get("b", 1, lambda: "b1 again") == "b1 again"
    assert cache.get("a", 2, lambda: "a2") == "a2"  # a new marker: rebuilt
    assert cache.builds == 5


def test_cache_of_size_zero_always_builds() -> None:
    cache: MarkerCache[int] = MarkerCache(0)
    assert [cache.get("a", 1, lambda: 7) for _ in range(3)] == [7, 7, 7]
    assert cache.builds == 3 and len(cache) == 0


def test_concurrent_requests_wait_for_one_build() -> None:
    cache: MarkerCache[int] = MarkerCache(4)
    calls: list[int] = []

    def build() -> int:
        calls.append(1)
        time.sleep(0.2)
        return 42

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("s", 1, build))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [42] * 4 and len(calls) == 1


def test_a_failed_build_is_not_cached() -> None:
    cache: MarkerCache[int] = MarkerCache(4)

    def broken() -> int:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        cache.get("s", 1, broken)
    assert len(cache) == 0 and cache.get("s", 1, lambda: 3) == 3


@pytest.mark.browser
def test_served_page_loads_plotly_from_the_api_and_draws(
    migrated: Any,
    browser: Any,  # noqa: F811 (the fixture imported above)
    api: TestClient,
) -> None:
    """The page, as the running server serves it, draws its plots with the linked asset."""
    import socket

    import uvicorn
    from selenium.webdriver.common.by import By

    study = _study(api, migrated)
    for i in range(12):
        _finish(study, CELLS[i % 2], 0.05 * (i + 1))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        browser.get(f"http://127.0.0.1:{port}{V1}/studies/adding-t20/report.html")
        log = browser.get_log("browser")
        severe = [e for e in log if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
        assert severe == []
        assert browser.execute_script("return typeof Plotly") == "object"
        plots = browser.find_elements(By.CSS_SELECTOR, "div.plot")
        assert plots and all(p.find_elements(By.CSS_SELECTOR, ".main-svg") for p in plots)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
