"""Tests of the comparison report built from synthetic FrozenTrials."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, TypeVar

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.report import ReportContext, build_report
from cellsearch.search.report.importance import param_importances
from cellsearch.search.report.model import CellSummary, StudyReport

CELLS = ("lstm", "gru")
T = TypeVar("T")


def make_trial(
    number: int,
    cell: str,
    value: float | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    lr: float = 0.01,
    attrs: dict[str, Any] | None = None,
    curve: dict[int, float] | None = None,
) -> FrozenTrial:
    params: dict[str, Any] = {"cell_type": cell, "learning_rate": lr}
    dists: dict[str, Any] = {
        "cell_type": CategoricalDistribution((*CELLS, "rnn_tanh")),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    }
    if cell == "lstm":
        params["lstm.forget_bias"] = 0.4 * (number % 5)
        dists["lstm.forget_bias"] = FloatDistribution(0.0, 2.0)
    user_attrs = {
        "cell_type": cell,
        "param_count": 1000 + number,
        "device": "cpu",
        "seconds_per_epoch": 0.5,
        "torch_version": "2.13.0",
        "cellsearch_version": "0.1.0",
        **(attrs or {}),
    }
    if curve is None and value is not None:
        curve = {0: value + 1.0, 1: value + 0.5, 2: value}
    trial = optuna.trial.create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params=params,
        distributions=dists,
        user_attrs=user_attrs,
        intermediate_values=curve or {},
    )
    trial.number = number
    if state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        trial.datetime_complete = dt.datetime(2025, 1, 1) + dt.timedelta(minutes=100 - number)
    return trial


def make_context(**changes: Any) -> ReportContext:
    base = ReportContext(
        study_name="demo",
        direction="minimize",
        metric="val_loss",
        n_trials=60,
        cell_types=CELLS,
        allocation="balanced",
        seed=0,
        status="completed",
    )
    return ReportContext(**{**base.__dict__, **changes})


def two_cell_trials(shift: float, per_cell: int = 30, seed: int = 0) -> list[FrozenTrial]:
    rng = np.random.default_rng(seed)
    trials = []
    for i in range(2 * per_cell):
        cell = CELLS[i % 2]
        value = float(rng.gamma(2.0, 0.05) + (shift if cell == "lstm" else 0.0))
        trials.append(make_trial(i, cell, value, lr=float(10 ** rng.uniform(-4, -1))))
    return trials


def cell(report: StudyReport, name: str) -> CellSummary:
    return report.cell(name)


def present(value: T | None) -> T:
    """A part of the report the test expects to be there."""
    assert value is not None
    return value


def test_clear_winner_is_named() -> None:
    report = build_report(two_cell_trials(shift=1.0), make_context(), n_bootstrap=200)
    assert report.verdict.startswith("gru is best: better than lstm")
    assert report.leader == "gru"
    comparison = present(report.comparison)
    (pair,) = comparison.pairs
    assert (pair.a, pair.b, pair.better) == ("gru", "lstm", "gru")
    assert pair.reject and present(pair.p_adjusted) < 0.05
    assert pair.p_best_of_n == pytest.approx(1.0) and pair.p_single == pytest.approx(1.0)
    assert comparison.n == 30
    gru = cell(report, "gru")
    best = present(gru.best)
    assert present(best.ci_low) <= best.value <= present(best.ci_high)
    assert present(gru.expected_best).n == list(range(1, 31))
    assert present(gru.expected_best).mean[0] == pytest.approx(np.mean(gru.points.value))
    assert best.value == min(gru.points.value)


def test_identical_distributions_give_no_detectable_difference() -> None:
    report = build_report(two_cell_trials(shift=0.0), make_context(), n_bootstrap=100)
    assert report.verdict.startswith("No detectable difference at this budget")
    (pair,) = present(report.comparison).pairs
    assert not pair.reject and pair.better is None
    assert 0.0 < present(pair.p_best_of_n) < 1.0


def test_maximisation_direction() -> None:
    trials = two_cell_trials(shift=1.0)
    report = build_report(trials, make_context(direction="maximize"), importance=False)
    assert report.leader == "lstm"
    lstm = cell(report, "lstm")
    assert present(lstm.best).value == max(lstm.points.value)
    means = present(lstm.expected_best).mean
    assert present(means[-1]) > present(means[0])


def test_single_cell_type() -> None:
    trials = [make_trial(i, "lstm", 0.1 * i + 0.1, lr=0.001 * (i + 1)) for i in range(12)]
    report = build_report(trials, make_context(cell_types=("lstm",)), n_bootstrap=50)
    assert report.comparison is None
    assert report.verdict == "Only one cell type has finished trials: nothing to compare."
    assert present(cell(report, "lstm").best).value == pytest.approx(0.1)
    importance = present(report.importance)
    assert importance.cell_type is None
    assert "learning_rate" in present(importance.per_cell["lstm"]).importances


def test_no_finished_trials() -> None:
    trials = [make_trial(0, "lstm", None, state=TrialState.RUNNING)]
    report = build_report(trials, make_context(status="running"))
    assert report.verdict == "No finished trials yet: nothing to compare."
    assert report.study.counts.running == 1
    assert all(c.best is None and c.divergence_rate is None for c in report.cells)
    assert any("No trials yet for: gru" in n for n in report.notes)
    assert present(report.importance).overall is None
    report.to_json()  # allow_nan=False: no NaN anywhere


def test_all_failed_trials() -> None:
    trials = [
        make_trial(i, CELLS[i % 2], None, state=TrialState.FAIL, attrs={"failure_kind": "diverged"})
        for i in range(6)
    ]
    report = build_report(trials, make_context())
    assert report.verdict.startswith(
        "Not enough completed trials to compare cell types (each needs 3): "
        "lstm: 0 of 3 trials completed (3 diverged); gru: 0 of 3 trials completed (3 diverged)"
    )
    assert report.leader is None
    for c in report.cells:
        assert c.divergence_rate == 1.0 and c.failures.diverged == 3
        assert c.best is None and c.learning_curve is None
    report.to_json()


def test_stale_failures_are_not_model_outcomes() -> None:
    trials = [
        make_trial(0, "lstm", 0.5),
        make_trial(1, "lstm", None, state=TrialState.FAIL, attrs={"failure_kind": "stale"}),
        make_trial(2, "lstm", None, state=TrialState.FAIL, attrs={"failure_kind": "diverged"}),
        make_trial(3, "lstm", None, state=TrialState.FAIL),
        make_trial(4, "lstm", None, state=TrialState.FAIL, attrs={"failure_kind": "interrupted"}),
    ]
    lstm = cell(build_report(trials, make_context(), importance=False), "lstm")
    found = {kind: n for kind, n in lstm.failures.model_dump().items() if n}
    assert found == {"diverged": 1, "error": 1, "interrupted": 1, "stale": 1}
    assert lstm.n_model_outcomes == 3
    assert lstm.divergence_rate == pytest.approx(1 / 3)


def test_pruned_trials_counted_and_excluded_from_best() -> None:
    trials = [make_trial(i, "gru", 0.5 + 0.01 * i) for i in range(4)]
    trials += [
        make_trial(4 + i, "gru", None, state=TrialState.PRUNED, curve={0: 0.01 * (i + 1)})
        for i in range(2)
    ]
    report = build_report(trials, make_context(), importance=False)
    gru = cell(report, "gru")
    assert gru.counts.pruned == 2 and gru.pruning_rate == pytest.approx(2 / 6)
    assert present(gru.best).value == pytest.approx(0.5)  # the pruned 0.01 is not a best
    assert gru.pruned.model_dump() == {"count": 2, "median_value_at_pruning": pytest.approx(0.015)}
    assert present(gru.learning_curve).n_trials == [6, 4, 4]
    assert gru.draws.model_dump() == {"n": 6, "completed": 4, "failed": 2}


def test_learning_curve_median_and_band() -> None:
    curves = [{0: 1.0, 1: 0.5}, {0: 2.0, 1: float("nan")}, {0: 3.0, 1: 0.7}]
    trials = [make_trial(i, "gru", 0.4, curve=c) for i, c in enumerate(curves)]
    curve = present(
        cell(build_report(trials, make_context(), importance=False), "gru").learning_curve
    )
    assert curve.epoch == [0, 1]
    assert curve.median == pytest.approx([2.0, 0.6])
    assert curve.q25[0] == pytest.approx(1.5) and curve.q75[0] == pytest.approx(2.5)
    assert curve.n_trials == [3, 2]


def test_adaptive_allocation_warns() -> None:
    report = build_report(two_cell_trials(0.0, 5), make_context(allocation="adaptive"))
    assert any("adaptive" in w and "biased" in w for w in report.warnings)
    balanced = build_report(two_cell_trials(0.0, 5), make_context())
    assert balanced.warnings == []


def test_running_study_is_marked_partial() -> None:
    trials = [*two_cell_trials(0.0, 5), make_trial(10, "gru", None, state=TrialState.RUNNING)]
    report = build_report(trials, make_context(status="running"), importance=False)
    assert report.study.partial is True
    assert report.warnings[0].startswith("Partial results: the study is running; 10 of 60")
    assert build_report(trials, make_context(), importance=False).study.partial is False


def test_importance_overall_and_per_cell() -> None:
    report = build_report(two_cell_trials(shift=1.0), make_context(), n_bootstrap=50)
    importance = present(report.importance)
    overall = present(importance.overall).importances
    assert sum(overall.values()) == pytest.approx(1.0)
    assert set(overall) == {"cell_type", "learning_rate", "lstm.forget_bias"}
    assert present(importance.cell_type).rank == 1  # the shift dominates
    assert "cell_type" not in present(importance.per_cell["gru"]).importances


@pytest.mark.parametrize("maximize", [False, True])
def test_importance_counts_a_conditional_parameter_where_it_is_active(maximize: bool) -> None:
    """``lstm.forget_bias`` (in lstm trials only) is grouped among the lstm trials, its
    variance a share of all completed trials' (by hand); failed trials are left out."""
    trials = [
        *two_cell_trials(shift=0.3, per_cell=40, seed=3),
        make_trial(80, "gru", None, state=TrialState.FAIL),
    ]
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    got = param_importances(completed, maximize=maximize, seed=0)
    assert got is not None and got.n_trials == len(completed) == 80
    assert set(got.importances) == {"cell_type", "learning_rate", "lstm.forget_bias"}
    values = np.array([t.value for t in completed], dtype=float)
    ranks = np.argsort(np.argsort(values)) / (len(values) - 1.0)  # no ties here
    sst = float(((ranks - ranks.mean()) ** 2).sum())
    lstm = [i for i, t in enumerate(completed) if "lstm.forget_bias" in t.params]
    bias = np.array([completed[i].params["lstm.forget_bias"] for i in lstm])
    active = ranks[lstm]
    groups = [active[bias == b] for b in np.unique(bias)]  # five values: five groups
    ssb = sum(len(g) * (g.mean() - active.mean()) ** 2 for g in groups)
    ssw = sum(((g - g.mean()) ** 2).sum() for g in groups)
    expected = max(0.0, (ssb - (len(groups) - 1) * ssw / (len(active) - len(groups))) / sst)
    effect = {p.name: p.effect for p in got.params}["lstm.forget_bias"]
    assert effect == pytest.approx(expected)
    assert got.params[0].name == "cell_type" and got.params[0].important  # the 0.3 shift


def test_allocation_and_environment() -> None:
    trials = [*two_cell_trials(0.0, 3), make_trial(6, "gru", None, state=TrialState.WAITING)]
    report = build_report(trials, make_context(), importance=False)
    assert report.allocation.trial_number == {"lstm": [0, 2, 4], "gru": [1, 3, 5, 6]}
    # completion time decreases with the number, so the last trial finished first
    assert report.allocation.completion_rank == {"lstm": [2, 4, 6], "gru": [1, 3, 5]}
    env = report.environment
    assert env.torch_versions == ["2.13.0"] and env.devices == {"cpu": 7}
    assert env.optuna_version == optuna.__version__


def test_report_is_strict_json_with_infinite_values() -> None:
    trials = two_cell_trials(0.0, 4)
    trials.append(make_trial(8, "gru", float("inf")))
    trials.append(make_trial(9, "lstm", 0.3, curve={0: float("inf"), 1: 0.3}))
    report = build_report(trials, make_context(baseline=0.1667, baseline_description="mean"))
    text = report.to_json()  # allow_nan=False
    assert json.loads(text)["study"]["baseline"] == pytest.approx(0.1667)
    assert cell(report, "gru").n_completed == 4  # the infinite value is left out


def test_partial_winner_names_the_undetected_pair() -> None:
    rng = np.random.default_rng(4)
    shifts = {"gru": 0.0, "lstm": 0.0, "rnn_tanh": 1.0}
    trials = [
        make_trial(i, c, float(rng.gamma(2.0, 0.05) + shifts[c]))
        for i, c in enumerate(list(shifts) * 25)
    ]
    ctx = make_context(cell_types=tuple(shifts), n_trials=75)
    report = build_report(trials, ctx, n_bootstrap=50, importance=False)
    lead = report.leader
    assert lead in ("gru", "lstm")
    other = "lstm" if lead == "gru" else "gru"
    assert report.verdict.startswith(
        f"{lead} leads: better than rnn_tanh; no detectable difference from {other} at this budget"
    )
    assert sum(p.reject for p in present(report.comparison).pairs) == 2


def test_untestable_comparison_does_not_claim_no_difference() -> None:
    # heavy pruning leaves two completed trials per cell: nothing can be tested, and the
    # verdict must say so rather than "no detectable difference"
    trials = [make_trial(i, c, v) for i, (c, v) in enumerate(
        [("lstm", 0.17), ("lstm", 0.18), ("gru", 0.001), ("gru", 0.002)])]  # fmt: skip
    report = build_report(trials, make_context(cell_types=("lstm", "gru")), importance=False)
    assert report.verdict.startswith("Not enough completed trials to compare cell types")
    assert "lstm: 2 of 2 trials completed; gru: 2 of 2 trials completed" in report.verdict
    assert "leads" not in report.verdict and report.leader is None
