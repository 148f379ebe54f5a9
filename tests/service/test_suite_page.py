"""The suite report page: escaped, complete, and rendered in a real headless Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellsearch.search.report.suite import SuiteTask, build_suite_report
from cellsearch.search.report.suite_model import RankPair, SuiteReport
from cellsearch.service.suites.page import render_suite_html
from tests.search.test_suite_report import study_report
from tests.service.test_report_page import _load, browser  # noqa: F401 - the fixture

CELLS = ("lstm", "gru", "rnn_tanh")
HOSTILE = "<script>alert('x')</script>&"
STUDY_URL = "/api/v1/studies/{name}/report.html"


def suite_report(n_tasks: int = 8, running: int = 1) -> SuiteReport:
    """lstm and gru close, rnn_tanh clearly worse, on ``n_tasks`` finished tasks."""
    rng = np.random.default_rng(3)
    tasks = []
    for i in range(n_tasks):
        base = float(rng.uniform(0.1, 1.0))
        values = {
            "lstm": list(base * (1 + rng.uniform(0, 0.2, 3))),
            "gru": list(base * (1 + rng.uniform(0, 0.2, 3))),
            "rnn_tanh": list(base * (2 + rng.uniform(0, 0.2, 3))),
        }
        label = HOSTILE if i == 0 else f"task-{i}"
        tasks.append(SuiteTask(label, f"s-task-{i}", "adding", "completed", 9, 9,
                               study_report(values, baseline=4.0)))  # fmt: skip
    for i in range(running):
        tasks.append(SuiteTask(f"late-{i}", f"s-late-{i}", "copy", "running", 2, 9))
    return build_suite_report("s", tasks, cell_types=CELLS, description=HOSTILE)


def test_page_escapes_and_shows_every_section() -> None:
    report = suite_report()
    page = render_suite_html(report, study_url=STUDY_URL)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    for section in ("id='verdict'", "id='tasks'", "id='scores'", "id='ranks'", "id='cd'",
                    "id='friedman'", "id='pairs'", "id='notes'"):  # fmt: skip
        assert section in page, section
    assert "PARTIAL RESULTS" in page and "late-0" in page
    assert "<script" not in page.replace("&lt;script", "")  # no script at all
    assert "href='/api/v1/studies/s-task-1/report.html'" in page


def test_page_without_finished_studies() -> None:
    report = suite_report(n_tasks=0, running=2)
    page = render_suite_html(report)
    assert "No finished study yet" in page and "id='cd'" not in page and "<a href" not in page


@pytest.mark.browser
def test_suite_page_renders_in_chromium(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    report = suite_report()
    errors = _load(browser, render_suite_html(report, study_url=STUDY_URL), tmp_path)
    assert errors == []
    assert browser.title == "cellsearch suite: s"
    verdict = browser.find_element(By.ID, "verdict").text
    assert verdict == report.verdict and "over 8 tasks" in verdict and "rnn_tanh" in verdict
    assert "7 of 8" not in verdict
    task_rows = browser.find_elements(By.CSS_SELECTOR, "#tasks tr")
    assert len(task_rows) == 1 + 9
    assert "counted once it finishes" in task_rows[-1].text
    assert HOSTILE in browser.find_element(By.ID, "scores").text  # shown as text, not run
    best = browser.find_elements(By.CSS_SELECTOR, "#scores td.best")
    assert len(best) == 8  # one best cell type per finished task (no ties here)
    svg = browser.find_element(By.CSS_SELECTOR, "#cd svg")
    assert svg.size["width"] > 300 and svg.size["height"] > 80
    labels = " ".join(t.text for t in svg.find_elements(By.TAG_NAME, "text"))
    for cell in CELLS:
        assert cell in labels
    pairs = browser.find_elements(By.CSS_SELECTOR, "#pairs tr")
    assert len(pairs) == 1 + 3
    ranks = browser.find_element(By.ID, "ranks").text
    assert ranks.index("rnn_tanh") > ranks.index("gru")  # worst listed last
    browser.save_screenshot(str(tmp_path / "suite.png"))


def _pair(separated: bool, reject: bool, better: str | None) -> RankPair:
    return RankPair(
        a="gru", b="lstm", statistic=0.0, p_value=0.01, p_adjusted=0.03, reject=reject,
        favours="gru", wins=8, ties=0, losses=0, mean_difference=0.2,
        average_rank_difference=1.0, separated=separated, better=better,
    )  # fmt: skip


def test_pair_result_names_the_friedman_gate() -> None:
    from cellsearch.service.suites.page import _pair_result

    assert _pair_result(_pair(True, True, "gru")) == "gru better"
    held = _pair_result(_pair(False, True, "gru"))
    assert held == "not separated (Holm rejects, but the Friedman test does not)"
    assert _pair_result(_pair(False, False, None)) == "not separated"
