"""The report page's reading aids, checked in headless Chromium: axes, bands, baselines,
best configurations, the trial table and its filter, the partial banner and reloads."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.report import ReportContext, StudyReport, build_report
from cellsearch.search.study.limits import parse_spec
from cellsearch.service.reports import sections as report_sections
from cellsearch.service.reports.figures import axis_type, clip_band
from cellsearch.service.reports.page import render_report_html
from tests.search.test_report import present
from tests.search.test_spec import spec_data
from tests.service import test_report_page as page_tests
from tests.service.test_report_page import _load

chromium = page_tests.browser  # the module-scoped headless Chromium, under this name

CELLS = ("lstm", "gru", "rnn_tanh")
CENTRE = {"lstm": 1e-3, "gru": 1e-4, "rnn_tanh": 0.17}  # spans three decades
DASHBOARD = "http://dash.example:8080/dashboard/studies/7"
DISTRIBUTIONS = {
    "cell_type": CategoricalDistribution(CELLS),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": CategoricalDistribution([32, 64]),
    "hidden_size": IntDistribution(16, 64, log=True),
}


def _trial(number: int, cell: str, rng: np.random.Generator) -> FrozenTrial:
    value = float(CENTRE[cell] * rng.uniform(0.5, 3.0))
    params: dict[str, Any] = {
        "cell_type": cell,
        "learning_rate": float(10 ** rng.uniform(-4, -1)),
        "batch_size": int(rng.choice([32, 64])),
        "hidden_size": int(rng.integers(16, 65)),
    }
    trial = optuna.trial.create_trial(
        value=value,
        params=params,
        distributions=DISTRIBUTIONS,
        user_attrs={
            "cell_type": cell, "param_count": 100 * params["hidden_size"], "num_layers": 1,
            "hidden_size": params["hidden_size"], "epochs_run": 5, "seconds": 1.5 + number,
            "test_metric": value * 1.1, "test_metric_name": "mse",
        },
        intermediate_values={e: value * (5 - e) for e in range(5)},
    )  # fmt: skip
    trial.number = number
    return trial


def _interrupted(number: int) -> FrozenTrial:
    trial = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params={"cell_type": "lstm"},
        distributions={"cell_type": CategoricalDistribution(CELLS)},
        user_attrs={"cell_type": "lstm", "failure_kind": "interrupted"},
    )
    trial.number = number
    return trial


def decades_report(status: str = "running") -> StudyReport:
    spec = parse_spec(
        spec_data(
            name="decades",
            space={
                "cell_type": list(CELLS),
                "learning_rate": {"low": 1e-4, "high": 0.1, "log": True},
                "batch_size": [32, 64],
                "hidden_size": {"low": 16, "high": 64, "log": True},
            },
            budget={"n_trials": 40, "max_epochs": 5},
        )
    )
    rng = np.random.default_rng(1)
    trials = [_trial(i, CELLS[i % 3], rng) for i in range(36)] + [_interrupted(36)]
    return build_report(trials, ReportContext.of(spec, status=status), n_bootstrap=50)


def test_log_axis_only_when_values_span_more_than_two_decades() -> None:
    assert axis_type([1e-4, 0.17]) == "log"
    assert axis_type([0.01, 0.9]) == "linear"  # 90x: under two decades
    assert axis_type([-0.1, 10.0]) == "linear"  # a log axis cannot show it
    assert axis_type([None, 0.5]) == "linear"


def test_bands_stop_at_the_metrics_bounds() -> None:
    bounds = (0.0, 1.0)  # an accuracy
    low, high = clip_band([-0.2, 0.3], [0.5, 1.4], bounds, log=False, floor=0.01)
    assert (low, high) == ([0.0, 0.3], [0.5, 1.0])
    low, _ = clip_band([-0.2, 0.3], [0.5, 0.6], bounds, log=True, floor=0.01)
    assert low == [0.01, 0.3]  # a log axis cannot reach 0: the band stops at the floor


def test_report_carries_metric_name_bounds_and_details() -> None:
    report = decades_report()
    study = report.study
    assert (study.metric_label, study.metric_low, study.metric_high) == (
        "validation MSE", 0.0, None)  # fmt: skip
    assert study.fixed_params["optimizer"] == "adam"
    assert study.trial_counts.model_dump() == {
        "complete": 36, "pruned": 0, "failed": 0, "requeued": 1, "running": 0,
        "waiting": 0, "finished": 36,
    }  # fmt: skip
    assert study.n_finished == 36  # the interrupted trial is not a finished one
    values = report.cell("rnn_tanh").points.value
    # learned: 5% (comparison.min_gain) of the way from the baseline 1/6 to 0
    assert report.cell("rnn_tanh").n_beat_baseline == sum(1 - 6 * v >= 0.05 for v in values)
    assert study.min_gain == 0.05 and study.learned is True
    assert report.cell("gru").n_beat_baseline == 12
    best = present(report.cell("gru").best)
    assert best.hyperparameters["optimizer"] == "adam"  # fixed by the spec
    assert best.hyperparameters["num_layers"] == 1
    assert best.hyperparameters["learning_rate"] == best.params["learning_rate"]
    table = present(report.trials)
    assert len(table.number) == 37 and table.state[-1] == "requeued (interrupted)"
    assert set(table.params) == {"learning_rate", "batch_size", "hidden_size"}


def _js(driver: Any, code: str) -> Any:
    return driver.execute_script(code)


@pytest.mark.browser
def test_plots_name_the_metric_use_log_axes_and_draw_the_baseline(
    chromium: Any, tmp_path: Path
) -> None:
    report = decades_report()
    assert _load(chromium, render_report_html(report), tmp_path) == []
    for plot in ("plot-evp", "plot-curves", "plot-scatter"):
        layout = _js(chromium, f"return document.getElementById('{plot}').layout")
        assert "validation MSE" in layout["yaxis"]["title"]["text"], plot
        assert layout["yaxis"]["type"] == "log", plot
        assert [s["y0"] for s in layout["shapes"]] == [pytest.approx(1 / 6)], plot
        lows = _js(chromium, f"return document.getElementById('{plot}').data.map(t => t.y)")
        assert min(v for trace in lows for v in trace if v is not None) > 0, plot
    headings = [h.text for h in chromium.find_elements("css selector", "h2")]
    assert any("validation MSE" in h for h in headings)


@pytest.mark.browser
def test_best_configurations_and_what_each_interval_is(chromium: Any, tmp_path: Path) -> None:
    report = decades_report(status="completed")
    assert _load(chromium, render_report_html(report), tmp_path) == []
    table = chromium.find_element("id", "best-configs")
    rows = {
        r.find_element("css selector", "th").text: [
            td.text for td in r.find_elements("css selector", "td")
        ]
        for r in table.find_elements("css selector", "tr")[1:]
    }
    assert {"learning_rate", "batch_size", "hidden_size", "optimizer", "dropout"} <= set(rows)
    assert rows["optimizer"] == ["adam"] * 3
    assert any(name.startswith("test MSE") for name in rows)
    legend = chromium.find_element("id", "legend").text
    assert "interval of that best value" in legend and "not a confidence interval" in legend
    summary = chromium.find_element("id", "summary").text
    assert "learned (trials)" in summary and "yes: 12 of 12 (best" in summary
    assert chromium.find_elements("id", "partial") == []  # completed: no banner
    assert _js(chromium, "return PAGE.refresh") == 0
    environment = chromium.find_element("id", "environment")
    names = [th.text for th in environment.find_elements("css selector", "th")]
    assert "optuna" in names and "bootstrap" in names
    assert "{" not in environment.text and '"' not in environment.text


def _rows(driver: Any) -> list[list[str]]:
    return [
        [td.text for td in tr.find_elements("css selector", "td")]
        for tr in driver.find_elements("css selector", "#trials tbody tr")
    ]


@pytest.mark.browser
def test_trial_table_sorts_filters_and_links_to_the_dashboard(
    chromium: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.support.ui import Select

    report = decades_report(status="completed")
    assert _load(chromium, render_report_html(report, dashboard_url=DASHBOARD), tmp_path) == []
    assert len(_rows(chromium)) == 37
    value = chromium.find_element("css selector", "#trials th[data-key=value]")
    value.click()
    values = [float(r[3]) for r in _rows(chromium) if r[3] != "\u2014"]
    assert values == sorted(values) and values[0] == pytest.approx(
        min(v for v in present(report.trials).value[:36] if v is not None), rel=1e-3
    )
    chromium.find_element("css selector", "#trials th[data-key=value]").click()
    values = [float(r[3]) for r in _rows(chromium) if r[3] != "\u2014"]
    assert values == sorted(values, reverse=True)
    assert _rows(chromium)[-1][2] == "requeued (interrupted)"  # no value: last either way
    Select(chromium.find_element("id", "cell-filter")).select_by_value("gru")
    assert {r[1] for r in _rows(chromium)} == {"gru"}
    lines = _js(
        chromium,
        "return document.getElementById('plot-parcoords').data[0].dimensions[0].values.length",
    )
    assert lines == 12
    link = chromium.find_element("css selector", "#trials tbody a")
    assert link.get_attribute("href").startswith(DASHBOARD + "/trials?numbers=")
    assert chromium.find_element("id", "dashboard-link").get_attribute("href") == DASHBOARD
    assert "cell=gru" in _js(chromium, "return window.location.hash")


@pytest.mark.browser
def test_running_study_says_it_is_partial_and_reloads_keeping_the_filter(
    chromium: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.support.ui import Select

    monkeypatch.setattr(report_sections, "REFRESH_SECONDS", 6)
    assert _load(chromium, render_report_html(decades_report("running")), tmp_path) == []
    banner = chromium.find_element("id", "partial").text
    assert "Partial results: the study is running" in banner and "reloads itself" in banner
    assert not [w for w in chromium.find_elements("css selector", ".warning")
                if w.text.startswith("Partial results")]  # fmt: skip
    Select(chromium.find_element("id", "cell-filter")).select_by_value("lstm")
    _js(chromium, "window.notReloaded = true")
    deadline = time.monotonic() + 20
    while _js(chromium, "return window.notReloaded === true") and time.monotonic() < deadline:
        time.sleep(0.2)
    # read in one script: the page reloads again a few seconds later
    reloaded, chosen, cells = _js(
        chromium,
        "return [window.notReloaded === undefined, document.getElementById('cell-filter').value,"
        " Array.from(document.querySelectorAll('#trials tbody tr td:nth-child(2)'),"
        " td => td.textContent)]",
    )
    assert reloaded, "the page did not reload"
    assert chosen == "lstm" and set(cells) == {"lstm"}


def test_cancelled_study_banner_says_the_numbers_are_final() -> None:
    page = render_report_html(decades_report("cancelled"), plotly_js="plotly.js")
    assert "the study was cancelled; 36 of 40 trials have finished" in page
    assert "const PAGE = " in page and '"refresh": 0' in page


@pytest.mark.browser
def test_a_big_study_draws_its_parallel_coordinates_when_scrolled_to_and_says_how_many(
    chromium: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cellsearch.service.reports import page as report_page

    monkeypatch.setattr(report_page, "INLINE_TRIALS", 10**9)  # a file: page cannot fetch
    spec = parse_spec(spec_data(name="big", budget={"n_trials": 2700, "max_epochs": 5}))
    rng = np.random.default_rng(2)
    trials = [_trial(i, CELLS[i % 3], rng) for i in range(2700)]
    report = build_report(trials, ReportContext.of(spec, status="completed"), n_bootstrap=20,
                          importance=False)  # fmt: skip
    assert _load(chromium, render_report_html(report), tmp_path) == []
    drawn = "return !!document.getElementById('plot-parcoords').data"
    assert not _js(chromium, drawn)  # not while out of sight: the page is not held up
    _js(chromium, "document.getElementById('plot-parcoords').scrollIntoView()")
    deadline = time.monotonic() + 60
    while not _js(chromium, drawn) and time.monotonic() < deadline:
        time.sleep(0.2)
    lines = "return document.getElementById('plot-parcoords').data[0].dimensions[0].values.length"
    assert _js(chromium, lines) == 2000
    note = chromium.find_element("id", "parcoords-note").text
    assert note.startswith("Drawing 2000 of the 2700 completed trials, evenly spread")
    labels = "return document.getElementById('plot-parcoords').data[0].dimensions.map(d => d.label)"
    assert "learning_rate (log)" in _js(chromium, labels)  # sampled on a log scale
    assert "batch_size" in _js(chromium, labels)


@pytest.mark.browser
def test_a_big_table_is_fetched_from_the_reports_json_not_carried_by_the_page(
    chromium: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import functools
    import http.server
    import threading

    from cellsearch.service.reports import page as report_page

    report = decades_report(status="completed")
    monkeypatch.setattr(report_page, "INLINE_TRIALS", 0)  # as if the table were big
    page = render_report_html(report)
    assert "const TRIALS = null;" in page and '"trials_url": "report"' in page
    (tmp_path / "report.html").write_text(page, encoding="utf-8")
    (tmp_path / "report").write_text(report.to_json(), encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        chromium.get(f"http://127.0.0.1:{server.server_address[1]}/report.html")
        deadline = time.monotonic() + 30
        while not _rows(chromium) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_rows(chromium)) == 37  # the same table, read from the JSON
    finally:
        server.shutdown()
