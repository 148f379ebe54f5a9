"""Suites rank only tasks something learned (issue 30, item 3): a results matrix of six
learned tasks and two noise tasks, with known answers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from optuna.trial import FrozenTrial, TrialState
from scipy import stats as sps

from cellsearch.search.report import ReportContext
from cellsearch.search.report.model import StudyReport
from cellsearch.search.report.suite import SuiteTask, build_suite_report, study_report_for_suite
from tests.search.test_report import present
from tests.search.test_suite_report import CELLS, _trial

LN2 = math.log(2)


def report_of(values: dict[str, list[float]], baseline: float) -> StudyReport:
    """A per-study report whose objective is a loss (best possible value 0)."""
    trials: list[FrozenTrial] = []
    for cell, cell_values in values.items():
        for v in cell_values:
            trials.append(_trial(len(trials), cell, v, TrialState.COMPLETE))
    context = ReportContext(
        study_name="s", direction="minimize", metric="val_loss", n_trials=len(trials),
        cell_types=tuple(values), allocation="balanced", seed=0, status="completed",
        baseline=baseline, baseline_description="the trivial predictor",
        metric_label="validation cross-entropy", metric_low=0.0,
    )  # fmt: skip
    return study_report_for_suite(trials, context)


def suite_tasks() -> list[SuiteTask]:
    """Six tasks every cell type learned (lstm < gru < rnn_tanh on each, in different
    units) and two no cell type learned (within 1% of ln 2, in another order)."""
    rng = np.random.default_rng(3)
    tasks = []
    for i in range(6):
        scale = float(10 ** rng.uniform(-2, 0))
        values = {"lstm": [scale], "gru": [1.5 * scale], "rnn_tanh": [2.0 * scale]}
        tasks.append(SuiteTask(f"learned{i}", f"s-learned{i}", "adding", "completed", 3, 3,
                               report_of(values, baseline=10.0)))  # fmt: skip
    noise = {
        "noise-gunpoint": {"lstm": [0.6919], "gru": [0.6891], "rnn_tanh": [0.6889]},
        "noise-copy": {"lstm": [0.6901], "gru": [0.6925], "rnn_tanh": [0.6880]},
    }
    for name, values in noise.items():
        tasks.append(SuiteTask(name, f"s-{name}", "ucr", "completed", 3, 3,
                               report_of(values, baseline=LN2)))  # fmt: skip
    return tasks


def test_tasks_no_cell_type_learned_are_listed_apart_and_left_out_of_the_ranks() -> None:
    report = build_suite_report("s", suite_tasks(), cell_types=CELLS)
    comparison = present(report.comparison)
    assert comparison.tasks == [f"learned{i}" for i in range(6)]
    assert comparison.n_tasks == 6
    # Perfect agreement over six tasks: chi2 = N (k - 1) = 12 on 2 degrees of freedom.
    friedman = present(comparison.friedman)
    assert friedman.statistic == pytest.approx(12.0)
    assert friedman.p_value == pytest.approx(math.exp(-6.0))
    assert comparison.average_ranks == {"lstm": 1.0, "gru": 2.0, "rnn_tanh": 3.0}
    assert set(report.scores) == {f"learned{i}" for i in range(6)}
    # six tasks: the Friedman test rejects, but a pair of three cell types needs seven
    assert report.verdict.startswith(
        "the cell types differ over 6 tasks (Friedman p=0.0025), but no pair is separated"
    )
    assert report.verdict.endswith(
        "(ranked on 6 of 8 tasks; left out: noise-gunpoint, noise-copy (no cell type learned))"
    )
    assert report.suite.n_included == 6 and report.suite.n_unlearned == 2
    assert report.suite.partial is False  # every study finished: nothing more will come
    rows = {r.task: r for r in report.tasks}
    gunpoint = rows["noise-gunpoint"]
    assert (gunpoint.included, gunpoint.left_out, gunpoint.learned) == (False, "unlearned", False)
    assert (gunpoint.best, gunpoint.best_cell, gunpoint.baseline) == (0.6889, "rnn_tanh", LN2)
    assert present(gunpoint.best_gain) == pytest.approx((LN2 - 0.6889) / LN2)
    assert "no cell type learned it: best 0.6889 (rnn_tanh), baseline 0.6931" in str(
        gunpoint.reason
    )
    assert rows["learned0"].learned is True and rows["learned0"].included
    listed = {u.task: u for u in report.unlearned}
    assert list(listed) == ["noise-gunpoint", "noise-copy"]
    assert listed["noise-copy"].bests == {"lstm": 0.6901, "gru": 0.6925, "rnn_tanh": 0.6880}
    assert listed["noise-copy"].baseline == LN2 and not listed["noise-copy"].ranked
    assert any("ranks the cell types on noise" in note for note in report.notes)
    json.loads(report.to_json())


def test_an_option_keeps_the_unlearned_tasks_in_the_ranks() -> None:
    tasks = suite_tasks()
    report = build_suite_report("s", tasks, cell_types=CELLS, rank_unlearned=True)
    comparison = present(report.comparison)
    assert comparison.n_tasks == 8 and report.suite.rank_unlearned
    # the Friedman test on the whole matrix, computed apart with scipy
    matrix = [[present(present(t.report).cell(c).best).value for c in CELLS] for t in tasks]
    expected = sps.friedmanchisquare(*np.array(matrix).T)
    assert present(comparison.friedman).statistic == pytest.approx(expected.statistic)
    assert present(comparison.friedman).p_value == pytest.approx(expected.pvalue)
    assert "ranked although no cell type learned them" in report.verdict
    assert all(u.ranked for u in report.unlearned) and len(report.unlearned) == 2


def test_a_task_only_some_cell_types_learned_stays_in() -> None:
    tasks = suite_tasks()
    partly = report_of({"lstm": [0.1], "gru": [0.69], "rnn_tanh": [0.6931]}, baseline=LN2)
    assert partly.study.learned is True and partly.cell("gru").learned is False
    tasks[-1] = SuiteTask("partly", "s-partly", "ucr", "completed", 3, 3, partly)
    report = build_suite_report("s", tasks, cell_types=CELLS)
    assert "partly" in present(report.comparison).tasks
    assert present(report.scores["partly"]["lstm"]).rank == 1.0
    assert [u.task for u in report.unlearned] == ["noise-gunpoint"]


def test_when_no_task_was_learned_nothing_is_ranked() -> None:
    report = build_suite_report("s", suite_tasks()[6:], cell_types=CELLS)
    assert report.comparison is None and report.scores == {}
    assert report.verdict.startswith("no task to rank: left out noise-gunpoint, noise-copy")
    assert [u.task for u in report.unlearned] == ["noise-gunpoint", "noise-copy"]
