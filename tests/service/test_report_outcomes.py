"""Every screen renders for every outcome (issue 30, item 6): the report's JSON, its page,
the CLI's text, and the suite's page and text, for studies with no trial, no completed
trial, one cell type with none, one completed trial per cell type, every trial failed or
pruned, and no cell type that learned; in process, through the API (no 5xx), and in
Chromium. A study made by the first release is migrated and rendered in
``test_report_migrated.py``."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import update

from cellsearch.search.report import ReportContext, StudyReport, build_report
from cellsearch.search.report.suite import SuiteTask, build_suite_report
from cellsearch.search.study.limits import parse_spec
from cellsearch.service.cli.report_text import report_lines
from cellsearch.service.cli.suite_render import suite_report_lines
from cellsearch.service.reports.figures import figures
from cellsearch.service.reports.page import render_report_html
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, session_scope
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.suites.page import render_suite_html
from tests.search.test_spec import spec_data
from tests.service.test_report_page import _load, browser  # noqa: F401 - a fixture

CELLS = ("lstm", "gru", "rnn_tanh")
V1 = "/api/v1"
DISTRIBUTIONS = {
    "cell_type": CategoricalDistribution(CELLS),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
}


def _trial(number: int, cell: str, state: str, value: float | None = None) -> FrozenTrial:
    """A trial as a worker leaves it: a curve for complete and pruned ones, a NaN at the
    end of a diverged one's, a failure kind on failures."""
    attrs: dict[str, Any] = {"cell_type": cell, "param_count": 1000 + number}
    curve: dict[int, float] = {}
    if state in ("COMPLETE", "PRUNED"):
        end = value if value is not None else 0.15
        curve = {1: end + 0.1, 2: end}
    elif state == "FAIL":
        attrs |= {"failure_kind": "diverged", "failure_reason": "loss is nan at epoch 2"}
        curve = {1: 12.0, 2: math.nan}
    trial = optuna.trial.create_trial(
        state=TrialState[state],
        value=value if state == "COMPLETE" else None,
        params={"cell_type": cell, "learning_rate": 10.0 ** (-1 - number % 3)},
        distributions=DISTRIBUTIONS,
        user_attrs=attrs,
        intermediate_values=curve,
    )
    trial.number = number
    return trial


def _outcome(name: str) -> list[FrozenTrial]:
    """The trials of one outcome (six trials, two per cell type, unless stated)."""
    if name == "no trial":
        return []
    if name == "nothing finished":
        return [_trial(i, CELLS[i % 3], "RUNNING") for i in range(3)]
    if name == "every trial failed or pruned":
        return [_trial(i, CELLS[i % 3], "FAIL" if i % 2 else "PRUNED") for i in range(6)]
    if name == "every trial diverged":
        return [_trial(i, CELLS[i % 3], "FAIL") for i in range(6)]
    if name == "one cell type with none completed":
        return [
            _trial(i, CELLS[i % 3], "PRUNED" if CELLS[i % 3] == "rnn_tanh" else "COMPLETE",
                   0.02 + 0.01 * i)
            for i in range(9)
        ]  # fmt: skip
    if name == "one completed trial per cell type":
        return [_trial(i, CELLS[i], "COMPLETE", 0.05 * (i + 1)) for i in range(3)]
    if name == "no cell type learned":
        return [_trial(i, CELLS[i % 3], "COMPLETE", 0.165 - 0.0005 * i) for i in range(9)]
    raise KeyError(name)


OUTCOMES = [
    "no trial",
    "nothing finished",
    "every trial failed or pruned",
    "every trial diverged",
    "one cell type with none completed",
    "one completed trial per cell type",
    "no cell type learned",
]
SPEC = {"budget": {"n_trials": 9, "max_epochs": 2}}


def _report(trials: list[FrozenTrial], status: str = "completed") -> StudyReport:
    context = ReportContext.of(parse_spec(spec_data(**SPEC)), status=status)
    return build_report(trials, context, n_bootstrap=50)


def _suite(report: StudyReport) -> Any:
    tasks = [
        SuiteTask("a", "s-a", "adding", "completed", report.study.n_finished, 9, report),
        SuiteTask("b", "s-b", "adding", "running", 0, 9),
    ]
    return build_suite_report("s", tasks, cell_types=list(CELLS))


def _check_text(lines: list[str]) -> None:
    assert lines and max(len(line) for line in lines) <= 80


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_every_screen_renders_in_process(outcome: str) -> None:
    report = _report(_outcome(outcome))
    again = StudyReport.model_validate_json(report.to_json())
    assert again == report
    page = render_report_html(again, plotly_js="plotly.js")
    assert "id='verdict'" in page and "<h2>Notes</h2>" in page
    figures(again)
    _check_text(report_lines(again))
    suite = _suite(again)
    assert "<h1>Cell types across tasks" in render_suite_html(suite)
    _check_text(suite_report_lines(suite))


def test_the_verdicts_say_what_happened() -> None:
    verdicts = {name: _report(_outcome(name)).verdict for name in OUTCOMES}
    assert verdicts["no trial"].startswith("No finished trials yet")
    assert verdicts["every trial diverged"].startswith("Not enough completed trials")
    assert (
        "rnn_tanh: 0 of 3 trials completed (3 pruned)"
        in verdicts["one cell type with none completed"]
    )
    assert verdicts["no cell type learned"].startswith(
        "No cell type learned this task at this budget: the best validation MSE is 0.161"
    )
    unlearned = _report(_outcome("no cell type learned"))
    page = render_report_html(unlearned, plotly_js="plotly.js")
    assert "no: 0 of 3 (best 2.8%)" in page  # learned (trials) beside every cell type
    text = "\n".join(report_lines(unlearned))
    assert "no 0/3 2.8%" in text and "No cell type learned this task" in text


def _store(api: TestClient, settings: Settings, name: str, trials: list[FrozenTrial]) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(name=name, **SPEC))
    assert response.status_code == 201, response.text
    study = optuna.load_study(study_name=name, storage=settings.database_url)
    for trial in trials:
        study.add_trial(trial)
    with session_scope(engine_for(settings)) as session:
        session.execute(
            update(StudyRecord).where(StudyRecord.name == name).values(status="completed")
        )


def test_no_outcome_answers_5xx_through_the_api(api: TestClient, migrated: Settings) -> None:
    for index, outcome in enumerate(OUTCOMES):
        name = f"outcome-{index}"
        _store(api, migrated, name, _outcome(outcome))
        body = api.get(f"{V1}/studies/{name}/report")
        assert body.status_code == 200, (outcome, body.text)
        report = StudyReport.model_validate(body.json())
        assert report.verdict == _report(_outcome(outcome)).verdict
        page = api.get(f"{V1}/studies/{name}/report.html")
        assert page.status_code == 200, (outcome, page.text[:500])
        assert api.get(f"{V1}/studies/{name}").status_code == 200
        assert api.get(f"{V1}/studies/{name}/trials").status_code == 200


@pytest.mark.browser
def test_every_outcome_page_loads_in_chromium(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    render: Callable[[StudyReport], str] = render_report_html
    for outcome in OUTCOMES:
        report = _report(_outcome(outcome))
        assert _load(browser, render(report), tmp_path) == [], outcome
        assert browser.find_element(By.ID, "verdict").text == report.verdict
        suite = tmp_path / "suite.html"
        suite.write_text(render_suite_html(_suite(report)), encoding="utf-8")
        browser.get(suite.as_uri())
        assert browser.find_element(By.ID, "verdict").text == _suite(report).verdict


def test_the_expected_best_plot_leaves_gaps_where_a_curve_has_no_value() -> None:
    """A curve with missing means or deviations (a cell type with no completed draw at
    some n) is drawn with gaps, never subtracted (the page once answered 500 on it)."""
    report = _report(_outcome("one cell type with none completed"))
    lstm = report.cell("lstm")
    assert lstm.expected_best is not None
    holed = lstm.expected_best.model_copy(
        update={
            "mean": [None, *lstm.expected_best.mean[1:]],
            "std": [*lstm.expected_best.std[:-1], None],
        }
    )
    cells = [
        c.model_copy(update={"expected_best": holed}) if c.cell_type == "lstm" else c
        for c in report.cells
    ]
    evp = next(f for f in figures(report.model_copy(update={"cells": cells}))
               if f["id"] == "plot-evp")  # fmt: skip
    band = [trace for trace in evp["data"] if trace.get("legendgroup") == "lstm"]
    high, low, line = band
    assert high["y"][0] is None and low["y"][-1] is None and line["y"][0] is None
    assert len(high["y"]) == len(line["x"])
