"""The report counts every finished trial as a draw; the verdict is honest about evidence.

Known answers come from brute force: every sequence of n draws enumerated, every split of
the pooled draws enumerated.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import Attr
from cellsearch.search.report import build_report
from tests.search.test_report import cell, make_context, make_trial, present

WORST = float("inf")  # a failed draw, for the brute force (minimisation)


def _cell_trials(start: int, cell_type: str, values: list[float], pruned: int) -> list[FrozenTrial]:
    trials = [make_trial(start + i, cell_type, v) for i, v in enumerate(values)]
    trials += [
        make_trial(start + len(values) + i, cell_type, None, state=TrialState.PRUNED)
        for i in range(pruned)
    ]
    return trials


def _best_of(draws: tuple[float, ...]) -> float:
    return min(draws)


def test_expected_best_counts_pruned_draws_as_failed() -> None:
    values, pruned = [0.1, 0.3, 0.2], 2
    trials = _cell_trials(0, "lstm", values, pruned) + _cell_trials(10, "gru", [0.5], 0)
    report = build_report(trials, make_context(n_trials=4), importance=False, n_bootstrap=50)
    lstm = cell(report, "lstm")
    pool = [*values, WORST, WORST]
    for n in (1, 2, 3):
        bests = [_best_of(seq) for seq in itertools.product(pool, repeat=n)]
        p_all_failed = np.mean([b == WORST for b in bests])
        conditional = np.mean([b for b in bests if b != WORST])
        assert present(lstm.expected_best).p_all_failed[n - 1] == pytest.approx(p_all_failed)
        assert present(lstm.expected_best).mean[n - 1] == pytest.approx(conditional)
    at = present(lstm.expected_best_at_budget)  # budget = 4 trials / 2 cells = 2
    assert at.n == 2 and at.p_all_failed == pytest.approx((2 / 5) ** 2)
    assert lstm.draws.model_dump() == {"n": 5, "completed": 3, "failed": 2}
    assert present(lstm.best).value == pytest.approx(0.1)


def test_best_of_n_probability_and_rank_test_count_failed_draws() -> None:
    a_values, b_values = [0.1, 0.4, 0.5], [0.2, 0.3, 0.6]
    trials = _cell_trials(0, "lstm", a_values, 3) + _cell_trials(10, "gru", b_values, 0)
    report = build_report(trials, make_context(n_trials=4), importance=False, n_bootstrap=50)
    (pair,) = present(report.comparison).pairs
    assert (pair.a, pair.b) == ("gru", "lstm")
    a_pool, b_pool = [*b_values], [*a_values, WORST, WORST, WORST]  # gru is 'a' here
    wins = []
    for sa in itertools.product(a_pool, repeat=2):
        for sb in itertools.product(b_pool, repeat=2):
            x, y = _best_of(sa), _best_of(sb)
            wins.append(1.0 if x < y else 0.5 if x == y else 0.0)
    assert pair.p_best_of_n == pytest.approx(np.mean(wins))
    # the test: every split of the pooled draws, the same best-of-2 statistic by brute force
    pooled = [*a_pool, *b_pool]

    def p_beats(side_a: list[float], side_b: list[float]) -> float:
        scores = []
        for sa in itertools.product(side_a, repeat=2):
            for sb in itertools.product(side_b, repeat=2):
                x, y = _best_of(sa), _best_of(sb)
                scores.append(1.0 if x < y else 0.5 if x == y else 0.0)
        return float(np.mean(scores))

    observed = p_beats(a_pool, b_pool)
    null = []
    for chosen in itertools.combinations(range(len(pooled)), len(a_pool)):
        side_a = [pooled[i] for i in chosen]
        side_b = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        null.append(p_beats(side_a, side_b))
    extreme = np.mean([abs(t - 0.5) >= abs(observed - 0.5) - 1e-12 for t in null])
    assert pair.p_best_of_n == pytest.approx(observed)
    assert pair.p_value == pytest.approx(extreme) and pair.method == "exact"


def test_no_leader_is_named_from_fewer_than_three_completed_trials() -> None:
    trials = _cell_trials(0, "lstm", [0.9], 9) + _cell_trials(20, "gru", [0.1, 0.11, 0.12], 7)
    report = build_report(trials, make_context(n_trials=20), importance=False)
    assert report.leader is None
    assert "lstm: 1 of 10 trials completed (9 pruned)" in report.verdict
    assert "gru" not in report.verdict.split(":", 1)[0]


def test_a_design_that_cannot_reach_significance_says_so() -> None:
    # 3 perfectly separated trials per cell type, 3 cell types: min p 0.1 > 0.05 / 3
    shift = {"lstm": 0.0, "gru": 1.0, "rnn_tanh": 2.0}
    trials = [make_trial(i, c, shift[c] + 0.01 * i) for i, c in enumerate(list(shift) * 3)]
    ctx = make_context(cell_types=tuple(shift), n_trials=9)
    report = build_report(trials, ctx, importance=False)
    assert report.verdict.startswith(
        "The design cannot detect a difference between lstm, gru, rnn_tanh: with 3 trials per "
        "cell type the smallest p-value the test can give is 0.1, above the 0.017 that Holm's "
        "correction needs for 3 pair(s); at least 5 trials per cell type are needed."
    )
    assert report.leader is None


def test_no_difference_says_what_would_detect_the_observed_effect() -> None:
    rng = np.random.default_rng(7)
    trials = [make_trial(i, ("lstm", "gru")[i % 2], float(rng.normal())) for i in range(20)]
    report = build_report(trials, make_context(n_trials=20), importance=False)
    assert report.verdict.startswith("No detectable difference at this budget")
    assert "trials per cell type for 80% power" in report.verdict


def test_pruning_rates_far_apart_are_warned_about() -> None:
    trials = _cell_trials(0, "lstm", [0.1, 0.2, 0.3], 7) + _cell_trials(20, "gru", [0.1] * 8, 2)
    report = build_report(trials, make_context(n_trials=20), importance=False)
    (warning,) = [w for w in report.warnings if "Pruning rates" in w]
    assert warning.startswith("Pruning rates differ by 50 points (lstm 70%, gru 20%)")
    even = _cell_trials(0, "lstm", [0.1] * 8, 2) + _cell_trials(20, "gru", [0.1] * 7, 3)
    assert not any("Pruning" in w for w in build_report(even, make_context()).warnings)


def test_a_best_trial_on_the_edge_of_its_range_is_warned_about() -> None:
    trials = [make_trial(0, "lstm", 0.1, lr=0.0999), make_trial(1, "lstm", 0.2, lr=0.001)]
    trials += [make_trial(2, "gru", 0.3, lr=0.001)]
    ranges = {"learning_rate": (1e-4, 0.1, True)}
    report = build_report(trials, make_context(ranges=ranges), importance=False)
    (warning,) = [w for w in report.warnings if "edge" in w or "outside" in w]
    assert warning.startswith("lstm's best trial (#0) has learning_rate = 0.0999 at the top")
    assert "gru" not in warning


def _reevaluated(number: int, cell_type: str, of: int, seed: int, value: float | None) -> Any:
    state = TrialState.COMPLETE if value is not None else TrialState.FAIL
    attrs: dict[str, Any] = {
        Attr.REEVALUATION_OF: of,
        Attr.REEVALUATION_JOB: number,
        Attr.REEVALUATION_SEED: seed,
    }
    if value is None:
        attrs[Attr.FAILURE_KIND] = "diverged"
    return make_trial(number, cell_type, value, state=state, attrs=attrs)


def test_reevaluation_carries_the_verdict_once_finished() -> None:
    search = [make_trial(i, ("lstm", "gru")[i % 2], 0.5 + 0.01 * i) for i in range(8)]
    again = [_reevaluated(100 + s, "gru", 1, s, 0.30 + 0.01 * s) for s in range(5)]
    again += [_reevaluated(200 + s, "lstm", 0, s, 0.60 + 0.01 * s) for s in range(4)]
    again += [_reevaluated(300, "lstm", 0, 4, None)]  # a diverged seed: a failed draw
    ctx = make_context(n_trials=8, reevaluate=(1, 5))
    report = build_report([*search, *again], ctx, importance=False)
    section = present(report.reevaluation)
    gru = section.cells["gru"].configurations[0]
    val = present(gru.val)
    assert gru.of == 1 and val.n == 5
    assert val.mean == pytest.approx(0.32)
    assert val.std == pytest.approx(np.std([0.30, 0.31, 0.32, 0.33, 0.34], ddof=1))
    assert section.cells["lstm"].configurations[0].failed == 1
    assert report.verdict.startswith(
        "After re-evaluation of each cell type's best configuration: gru is best"
    )
    assert report.leader == "gru"
    # search statistics leave re-evaluation runs out
    assert cell(report, "gru").draws.n == 4
    pending = make_context(n_trials=8, reevaluate=(1, 5), status="running")
    running = build_report([*search, *again], pending, importance=False)
    assert not running.verdict.startswith("After re-evaluation")
    assert any("Until it has finished" in n for n in running.notes)


def _drawn(start: int, cell_type: str, values: list[float], kind: str) -> list[FrozenTrial]:
    return [
        make_trial(start + i, cell_type, v, attrs={Attr.DRAW: kind}) for i, v in enumerate(values)
    ]


def _phased(random: dict[str, list[float]], adaptive: dict[str, list[float]]) -> list[FrozenTrial]:
    trials: list[FrozenTrial] = []
    for kind, values in (("random", random), ("adaptive", adaptive)):
        for cell_type, cell_values in values.items():
            trials += _drawn(len(trials), cell_type, cell_values, kind)
    return trials


# random draws that tell lstm and gru apart nowhere; adaptive ones far better for lstm
INTERLEAVED_RANDOM = {"lstm": [0.30, 0.32, 0.34, 0.36, 0.38], "gru": [0.31, 0.33, 0.35, 0.37, 0.39]}
LSTM_AHEAD_ADAPTIVE = {
    "lstm": [0.01 * i for i in range(1, 11)],
    "gru": [0.5 + 0.01 * i for i in range(10)],
}


def test_with_a_random_phase_only_the_random_draws_are_tested() -> None:
    """The adaptive trials, far better for lstm, would decide the test if they counted; the
    random draws, interleaved, name nobody, and the effect is theirs (brute force)."""
    random, adaptive = INTERLEAVED_RANDOM, LSTM_AHEAD_ADAPTIVE
    trials = _phased(random, adaptive)
    ctx = make_context(n_trials=30, random_draws=2)
    report = build_report(trials, ctx, importance=False, n_bootstrap=50)
    comparison = present(report.comparison)
    (pair,) = comparison.pairs
    assert comparison.random_only and comparison.n == 2
    assert (pair.draws_a, pair.draws_b) == (5, 5) and not pair.reject
    a, b = random[pair.a], random[pair.b]
    wins = [
        1.0 if min(x) < min(y) else 0.5 if min(x) == min(y) else 0.0
        for x in itertools.product(a, repeat=2)
        for y in itertools.product(b, repeat=2)
    ]
    assert pair.p_best_of_n == pytest.approx(np.mean(wins))
    assert report.leader is None and report.verdict.startswith("No detectable difference")
    assert "2 random trials per cell type" in report.verdict
    assert any(note.startswith("The comparison rests on each cell type's random draws") for note
               in report.notes)  # fmt: skip
    assert present(cell(report, "lstm").best).value == pytest.approx(0.01)  # from every trial
    # the same trials without a random phase: the adaptive trials decide
    for t in trials:
        del t.user_attrs[Attr.DRAW]
    unphased = build_report(trials, make_context(n_trials=30), importance=False, n_bootstrap=50)
    assert not present(unphased.comparison).random_only and unphased.leader == "lstm"
    assert unphased.verdict.startswith("lstm is best")


def test_the_leader_is_the_random_draws_winner() -> None:
    random = {"lstm": [0.50, 0.51, 0.52, 0.53, 0.54], "gru": [0.10, 0.11, 0.12, 0.13, 0.14]}
    adaptive = {"lstm": [0.01, 0.02, 0.03], "gru": [0.2, 0.21, 0.22]}  # lstm's best is best
    report = build_report(
        _phased(random, adaptive), make_context(n_trials=16, random_draws=5), importance=False
    )
    assert report.leader == "gru"
    assert report.verdict.startswith("gru is best: better than lstm (5 random trials per")
    assert present(cell(report, "lstm").best).value == pytest.approx(0.01)


def test_too_few_completed_random_draws_are_not_tested() -> None:
    trials = _phased(
        {"lstm": [0.1, 0.2], "gru": [0.3, 0.4]},
        {"lstm": [0.01, 0.02, 0.03], "gru": [0.5, 0.6, 0.7]},
    )
    report = build_report(trials, make_context(n_trials=10, random_draws=2), importance=False)
    (pair,) = present(report.comparison).pairs
    assert pair.p_value is None and not pair.reject  # 2 completed random draws each
    assert report.leader is None


def test_a_study_begun_before_draws_were_recorded_tests_every_draw() -> None:
    random, adaptive = INTERLEAVED_RANDOM, LSTM_AHEAD_ADAPTIVE
    trials = _phased(random, adaptive)
    for t in trials[:3]:  # run before the upgrade: no kind recorded
        del t.user_attrs[Attr.DRAW]
    report = build_report(trials, make_context(n_trials=30, random_draws=5), importance=False)
    comparison = present(report.comparison)
    assert not comparison.random_only and comparison.n == 15
    assert report.leader == "lstm"


def test_no_completed_random_draw_says_what_the_tests_lack() -> None:
    trials = _phased({"lstm": [0.1], "gru": [0.2]}, {"lstm": [0.01] * 3, "gru": [0.5] * 3})
    for t in trials[:2]:  # both random draws diverged: failed draws
        t.state, t.values = TrialState.FAIL, None
        t.user_attrs[Attr.FAILURE_KIND] = "diverged"
    report = build_report(trials, make_context(n_trials=8, random_draws=1), importance=False)
    assert report.leader is None
    assert report.verdict.startswith("No cell type completed any of its random draws")
