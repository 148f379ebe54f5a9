"""Learned or not: the margin rule and the verdict of a study no cell type learned, with
known answers (issue 30, items 1 and 2)."""

from __future__ import annotations

import json
import math

import pytest
from optuna.trial import FrozenTrial

from cellsearch.search.errors import SpecError
from cellsearch.search.report import ReportContext, build_report
from cellsearch.search.report.learning import MIN_GAIN, Margin
from cellsearch.search.study.limits import parse_spec
from tests.search.test_report import make_context, make_trial, present
from tests.search.test_report_draws import _reevaluated
from tests.search.test_spec import spec_data

LN2 = math.log(2)


def loss_margin(baseline: float, min_gain: float = MIN_GAIN) -> Margin:
    return Margin.of(baseline, low=0.0, high=None, min_gain=min_gain, maximize=False)


def test_the_gain_is_the_share_of_the_way_from_the_baseline_to_the_best_value() -> None:
    # GunPoint in the issue: 0.6889 against ln 2 is 0.6% of the way to 0: not learned
    gunpoint = loss_margin(LN2)
    assert gunpoint.gain(0.6889) == pytest.approx((LN2 - 0.6889) / LN2)
    assert gunpoint.gain(0.6889) == pytest.approx(0.00613, abs=1e-5)
    assert gunpoint.learned(0.6889) is False
    # the adding problem: 0.0003 against 1/6 is 99.8% of the way: learned
    adding = loss_margin(1 / 6)
    assert adding.gain(0.0003) == pytest.approx(1 - 0.0003 * 6)
    assert adding.learned(0.0003) is True
    # an accuracy is maximised towards 1: 0.913 against a majority class's 0.5
    accuracy = Margin.of(0.5, low=0.0, high=1.0, min_gain=0.05, maximize=True)
    assert accuracy.gain(0.913) == pytest.approx(0.826)
    assert accuracy.learned(0.913) is True and accuracy.learned(0.52) is False
    assert accuracy.gain(0.4) == pytest.approx(-0.2)  # worse than the baseline


def test_the_margin_is_inclusive_and_zero_means_any_improvement() -> None:
    margin = loss_margin(1.0, min_gain=0.05)
    assert margin.learned(0.95) is True  # exactly 5%
    assert margin.learned(0.9501) is False
    assert margin.count([0.5, 0.95, 0.96, 1.2]) == 2
    anything = loss_margin(1.0, min_gain=0.0)
    assert anything.learned(0.9999) is True
    assert anything.learned(1.0) is False  # no improvement is not learning


def test_nothing_is_judged_without_a_baseline_or_a_best_possible_value() -> None:
    assert loss_margin(None).learned(0.1) is None  # type: ignore[arg-type]
    assert Margin.of(1.0, low=None, high=None, min_gain=0.05, maximize=False).gain(0.5) is None
    assert loss_margin(0.0).learned(0.0) is None  # a baseline already at the best value
    assert loss_margin(None).count([0.1]) is None  # type: ignore[arg-type]


def test_the_spec_option_has_a_default_and_bounds() -> None:
    spec = parse_spec(spec_data())
    assert spec.comparison.min_gain == MIN_GAIN == 0.05
    assert spec.comparison.rank_unlearned is False
    chosen = parse_spec(spec_data(comparison={"min_gain": 0.2, "rank_unlearned": True}))
    assert chosen.comparison.min_gain == 0.2 and chosen.comparison.rank_unlearned
    for bad in (-0.1, 1.0):
        with pytest.raises(SpecError, match=r"comparison\.min_gain"):
            parse_spec(spec_data(comparison={"min_gain": bad}))
    context = ReportContext.of(chosen, status="completed")
    assert context.min_gain == 0.2 and context.baseline == pytest.approx(1 / 6)


def _noise_trials(values: dict[str, list[float]]) -> list[FrozenTrial]:
    trials: list[FrozenTrial] = []
    for cell, cell_values in values.items():
        for value in cell_values:
            trials.append(make_trial(len(trials), cell, value))
    return trials


def _ln2_context(**changes: object) -> ReportContext:
    fields: dict[str, object] = {
        "baseline": LN2, "baseline_description": "uniform prediction over 2 classes",
        "metric_label": "validation cross-entropy", "metric_low": 0.0, "n_trials": 8,
    }  # fmt: skip
    return make_context(**{**fields, **changes})


def test_a_study_no_cell_type_learned_says_so_and_names_no_leader() -> None:
    # GunPoint-like: every trial within 1% of ln 2, lstm consistently "better"
    trials = _noise_trials({"lstm": [0.6889, 0.6895, 0.6901, 0.6899], "gru": [0.6925] * 4})
    report = build_report(trials, _ln2_context(), n_bootstrap=50, importance=False)
    assert report.verdict.startswith("No cell type learned this task at this budget: ")
    assert "the best validation cross-entropy is 0.6889 (lstm, trial #0)" in report.verdict
    assert "against the baseline 0.6931 (uniform prediction over 2 classes)" in report.verdict
    assert "0.61% of the way to 0 where 5% counts as learning" in report.verdict
    assert "raise budget.max_epochs" in report.verdict.lower()
    assert report.leader is None
    assert report.study.learned is False and report.study.min_gain == MIN_GAIN
    for name in ("lstm", "gru"):
        summary = report.cell(name)
        assert summary.learned is False and summary.n_beat_baseline == 0
    assert present(report.cell("lstm").best_gain) == pytest.approx((LN2 - 0.6889) / LN2)
    assert json.loads(report.to_json())["study"]["learned"] is False


def test_a_running_study_has_not_learned_yet() -> None:
    trials = _noise_trials({"lstm": [0.69, 0.691, 0.692], "gru": [0.69, 0.691, 0.692]})
    report = build_report(trials, _ln2_context(status="running"), importance=False)
    assert report.verdict.startswith("No cell type has learned this task yet: ")


def test_a_cell_type_that_did_not_learn_is_reported_beside_the_others() -> None:
    trials = _noise_trials({"lstm": [0.10, 0.12, 0.15, 0.11], "gru": [0.6925, 0.69, 0.691, 0.70]})
    report = build_report(trials, _ln2_context(), n_bootstrap=50, importance=False)
    assert report.study.learned is True
    assert report.cell("lstm").learned is True and report.cell("lstm").n_beat_baseline == 4
    assert report.cell("gru").learned is False and report.cell("gru").n_beat_baseline == 0
    assert any(w.startswith("gru did not learn this task") for w in report.warnings)
    assert not report.verdict.startswith("No cell type learned")
    assert report.leader in (None, "lstm")


def test_an_unlearned_cell_type_is_never_the_leader() -> None:
    # gru's draws beat lstm's, but only lstm's best clears the margin
    trials = _noise_trials({"lstm": [0.5, 0.69, 0.69, 0.69, 0.69], "gru": [0.67] * 5})
    report = build_report(trials, _ln2_context(min_gain=0.05), importance=False)
    assert report.cell("gru").learned is False
    assert report.leader != "gru"


def test_reevaluation_does_not_overrule_a_study_nobody_learned() -> None:
    search = _noise_trials({"lstm": [0.690, 0.691], "gru": [0.6925, 0.6926]})
    again = [_reevaluated(100 + s, "lstm", 0, s, 0.689 + 0.0001 * s) for s in range(3)]
    again += [_reevaluated(200 + s, "gru", 2, s, 0.6929 + 0.0001 * s) for s in range(3)]
    report = build_report(
        [*search, *again], _ln2_context(n_trials=4, reevaluate=(1, 3)), importance=False
    )
    assert report.reevaluation is not None and report.reevaluation.complete
    assert report.verdict.startswith("No cell type learned this task")
    assert report.leader is None


def test_without_a_baseline_nothing_is_judged() -> None:
    trials = _noise_trials({"lstm": [0.5, 0.6, 0.7], "gru": [0.5, 0.6, 0.7]})
    report = build_report(trials, make_context(), importance=False)
    assert report.study.learned is None
    assert all(c.learned is None and c.n_beat_baseline is None for c in report.cells)
