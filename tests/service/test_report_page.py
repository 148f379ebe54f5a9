"""The report page rendered in a real headless Chromium (selenium)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.report import ReportContext, StudyReport, build_report
from cellsearch.service.reports.page import render_report_html

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CELLS = ("lstm", "gru", "rnn_tanh")
HOSTILE = "<script>alert('x')</script>&"


def _trial(number: int, cell: str, rng: np.random.Generator) -> FrozenTrial:
    value = float(rng.gamma(2.0, 0.05) + (0.5 if cell == "rnn_tanh" else 0.0))
    trial = optuna.trial.create_trial(
        value=value,
        params={"cell_type": cell, "learning_rate": float(10 ** rng.uniform(-4, -1))},
        distributions={
            "cell_type": CategoricalDistribution(CELLS),
            "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        },
        user_attrs={"cell_type": cell, "param_count": int(rng.integers(1000, 50000))},
        intermediate_values={e: value + 1.0 / (e + 1) for e in range(5)},
    )
    trial.number = number
    return trial


def _context(**changes: Any) -> ReportContext:
    fields: dict[str, Any] = {
        "study_name": HOSTILE,
        "direction": "minimize",
        "metric": "val_loss",
        "n_trials": 45,
        "cell_types": CELLS,
        "allocation": "adaptive",
        "seed": 0,
        "status": "running",
        "baseline": 0.1667,
        "baseline_description": "predict the mean",
    }
    return ReportContext(**{**fields, **changes})


def full_report() -> StudyReport:
    rng = np.random.default_rng(0)
    trials = [_trial(i, CELLS[i % 3], rng) for i in range(45)]
    return build_report(trials, _context(), n_bootstrap=100)


def empty_report() -> StudyReport:
    trials = [
        optuna.trial.create_trial(
            state=TrialState.RUNNING,
            params={"cell_type": "lstm"},
            distributions={"cell_type": CategoricalDistribution(CELLS)},
        )
    ]
    return build_report(trials, _context(study_name="empty-study", allocation="balanced"))


def test_page_escapes_user_strings_and_shows_warnings() -> None:
    page = render_report_html(full_report(), plotly_js="https://cdn.example/plotly.js")
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    assert '<script src="https://cdn.example/plotly.js"' in page
    assert "Partial results: the study is running" in page and "Allocation is adaptive" in page
    assert "predict the mean" in page


def test_page_of_a_study_whose_every_trial_diverged() -> None:
    """Finished draws without a completed one have no expected best to plot (it once
    failed the page with a TypeError)."""
    trials = []
    for i in range(6):
        trial = optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"cell_type": CELLS[i % 3]},
            distributions={"cell_type": CategoricalDistribution(CELLS)},
            user_attrs={"cell_type": CELLS[i % 3], "failure_kind": "diverged"},
        )
        trial.number = i
        trials.append(trial)
    report = build_report(trials, _context(status="completed"))
    assert all(c.expected_best is not None and c.n_completed == 0 for c in report.cells)
    page = render_report_html(report, plotly_js="plotly.js")
    assert "plot-evp" not in page
    assert "No trial completed: all 6 finished trials were pruned or failed" in page


def test_inline_page_embeds_plotly() -> None:
    page = render_report_html(empty_report())
    assert len(page) > 1_000_000  # plotly.min.js is inside
    assert "<script src=" not in page
    assert "No completed trials yet" in page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (shutil.which(CHROMEDRIVER) and shutil.which(CHROMIUM)):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMEDRIVER} or {CHROMIUM} missing on CI")
        pytest.skip(f"{CHROMEDRIVER} or {CHROMIUM} not installed (apt-get install chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
    flags += "--disable-background-networking --disable-component-update --disable-sync"
    for flag in flags.split():
        options.add_argument(flag)
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"cellsearch-chromium-{os.getpid()}"
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 1000)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _load(driver: Any, page: str, tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    driver.get(path.as_uri())
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.browser
def test_every_plot_renders_in_chromium(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    report = full_report()
    errors = _load(browser, render_report_html(report), tmp_path)
    assert errors == []
    plots = browser.find_elements(By.CSS_SELECTOR, "div.plot")
    ids = {p.get_attribute("id") for p in plots}
    assert ids == {
        "plot-evp",
        "plot-curves",
        "plot-importance",
        "plot-importance-cells",
        "plot-scatter",
        "plot-allocation",
        "plot-parcoords",
    }
    for plot in plots:
        assert plot.find_elements(By.CSS_SELECTOR, ".main-svg"), plot.get_attribute("id")
        drawn = ".parcoords" if plot.get_attribute("id") == "plot-parcoords" else ".trace"
        assert plot.find_elements(By.CSS_SELECTOR, drawn), plot.get_attribute("id")
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict == report.verdict and "rnn_tanh" in verdict
    assert browser.title == f"cellsearch report: {HOSTILE}"
    assert "rnn_tanh" in browser.find_element(By.ID, "summary").text
    environment = browser.find_element(By.ID, "environment").text
    assert "cellsearch (this report)" in environment and "{" not in environment


@pytest.mark.browser
def test_empty_study_page_renders_with_message(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    errors = _load(browser, render_report_html(empty_report()), tmp_path)
    assert errors == []
    assert "No completed trials yet" in browser.find_element(By.ID, "empty").text
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict == "No finished trials yet: nothing to compare."
    for plot in browser.find_elements(By.CSS_SELECTOR, "div.plot"):
        assert plot.find_elements(By.CSS_SELECTOR, ".main-svg")
