"""Known-answer tests for cellsearch.search.report.stats."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from cellsearch.search.report import stats


def _brute_force_best_of_n(scores: list[float], n: int, maximize: bool) -> tuple[float, float]:
    """Mean and std of the best of n draws, enumerating all N^n equally likely draws."""
    pick = max if maximize else min
    bests = [pick(draw) for draw in itertools.product(scores, repeat=n)]
    return float(np.mean(bests)), float(np.std(bests))


def test_expected_max_reference_toy_check() -> None:
    mean, _ = stats.expected_max([0.5, 0.6, 0.7, 0.9], maximize=True)
    assert mean[0] == pytest.approx(0.675)
    assert mean[1] == pytest.approx(0.75625)


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_expected_max_matches_brute_force(size: int, maximize: bool) -> None:
    scores = np.random.default_rng(size).normal(size=size).round(3).tolist()
    scores[-1] = scores[0]  # a tie
    mean, std = stats.expected_max(scores, [1, 2, 3, 4], maximize=maximize)
    for k, n in enumerate([1, 2, 3, 4]):
        want_mean, want_std = _brute_force_best_of_n(scores, n, maximize)
        assert mean[k] == pytest.approx(want_mean, abs=1e-12)
        assert std[k] == pytest.approx(want_std, abs=1e-9)


def test_expected_max_closed_form_and_defaults() -> None:
    scores = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    mean, std = stats.expected_max(scores)
    assert mean.shape == std.shape == (6,)
    v = np.sort(scores)
    i = np.arange(1, 7)
    for n in range(1, 7):
        p = (i / 6) ** n - ((i - 1) / 6) ** n
        mu = float(np.sum(p * v))
        assert mean[n - 1] == pytest.approx(mu)
        assert std[n - 1] == pytest.approx(np.sqrt(np.sum(p * (v - mu) ** 2)))
    assert mean[0] == pytest.approx(scores.mean())
    assert np.all(np.diff(mean) > 0)  # more trials, better expected best


def test_expected_max_minimisation_mirrors() -> None:
    scores = np.array([0.5, 0.6, 0.7, 0.9])
    low_mean, low_std = stats.expected_max(scores, maximize=False)
    neg_mean, neg_std = stats.expected_max(-scores, maximize=True)
    np.testing.assert_allclose(low_mean, -neg_mean)
    np.testing.assert_allclose(low_std, neg_std)
    assert low_mean[1] == pytest.approx(0.59375)  # E[min of 2]
    assert low_mean[-1] < low_mean[0]


def test_expected_max_large_n_converges_to_best() -> None:
    mean, std = stats.expected_max([1.0, 2.0, 3.0], [1000])
    assert mean[0] == pytest.approx(3.0)
    assert std[0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_expected_max_rejects_bad_input(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.expected_max(bad)


def _bootstrap_reference(scores: list[float], maximize: bool, reps: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    bests = []
    for _ in range(reps):
        idx = rng.integers(0, len(scores), size=len(scores))
        draw = [scores[j] for j in idx]
        bests.append(max(draw) if maximize else min(draw))
    return bests


@pytest.mark.parametrize("maximize", [True, False])
def test_bootstrap_ci_matches_plain_loop(maximize: bool) -> None:
    scores = np.random.default_rng(3).normal(size=37).tolist()
    bests = _bootstrap_reference(scores, maximize, 500, seed=11)
    want = (np.percentile(bests, 2.5), np.percentile(bests, 97.5))
    got = stats.bootstrap_ci(scores, maximize=maximize, n_bootstrap=500, seed=11)
    assert got == pytest.approx(want)
    best = max(scores) if maximize else min(scores)
    assert got[0] <= got[1]
    assert (got[1] == pytest.approx(best)) if maximize else (got[0] == pytest.approx(best))


def test_bootstrap_ci_blocks_do_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = np.arange(50.0)
    whole = stats.bootstrap_ci(scores, n_bootstrap=300, seed=5)
    monkeypatch.setattr(stats, "_BOOTSTRAP_BLOCK", 120)  # 2 rows per block
    assert stats.bootstrap_ci(scores, n_bootstrap=300, seed=5) == whole
    assert stats.bootstrap_ci(scores, n_bootstrap=300, seed=6) != whole


def test_bootstrap_ci_constant_scores() -> None:
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)


def _brute_force_p(a: list[float], b: list[float], n: int) -> float:
    total = 0.0
    for da in itertools.product(a, repeat=n):
        for db in itertools.product(b, repeat=n):
            total += 1.0 if max(da) > max(db) else 0.5 if max(da) == max(db) else 0.0
    return total / (len(a) ** n * len(b) ** n)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_p_best_of_n_matches_brute_force(n: int) -> None:
    a, b = [0.1, 0.5, 0.5, 0.9], [0.2, 0.5, 0.7]
    assert stats.p_best_of_n_beats(a, b, n) == pytest.approx(_brute_force_p(a, b, n))
    assert stats.p_best_of_n_beats(a, b, n) + stats.p_best_of_n_beats(b, a, n) == pytest.approx(1)


def test_p_best_of_n_minimisation_and_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.0, 1.0, 40), rng.normal(0.3, 1.0, 60)
    n = 5
    exact = stats.p_best_of_n_beats(a, b, n, maximize=False)
    sims = 200_000
    min_a = rng.choice(a, size=(sims, n)).min(axis=1)
    min_b = rng.choice(b, size=(sims, n)).min(axis=1)
    mc = np.mean(min_a < min_b) + 0.5 * np.mean(min_a == min_b)
    assert exact == pytest.approx(mc, abs=0.005)
    assert exact == pytest.approx(stats.p_best_of_n_beats(-a, -b, n, maximize=True))


def test_p_best_of_n_single_draw_is_mann_whitney_effect() -> None:
    a, b = [1.0, 2.0, 2.0, 5.0], [2.0, 3.0, 0.5]
    effect, p_value = stats.mann_whitney(a, b)
    assert stats.p_best_of_n_beats(a, b, 1) == pytest.approx(effect)
    u = sps.mannwhitneyu(a, b, alternative="two-sided")
    assert effect == pytest.approx(u.statistic / 12)
    assert p_value == pytest.approx(u.pvalue)


def test_mann_whitney_direction_for_minimisation() -> None:
    low, high = np.arange(10.0), np.arange(10.0) + 20
    effect_min, p_min = stats.mann_whitney(low, high, maximize=False)
    effect_max, _ = stats.mann_whitney(low, high, maximize=True)
    assert effect_min == 1.0 and effect_max == 0.0
    assert p_min < 1e-3


def test_holm_hand_computed() -> None:
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    adjusted, reject = stats.holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    assert reject.tolist() == [True, False, False, True]


def test_holm_step_down_stops_at_first_failure() -> None:
    # 0.01 <= 0.05/3 rejects; 0.03 > 0.05/2 stops; 0.04 <= 0.05 is not rejected.
    adjusted, reject = stats.holm([0.04, 0.01, 0.03])
    assert reject.tolist() == [False, True, False]
    assert adjusted.max() <= 1.0
    empty_adj, empty_rej = stats.holm([])
    assert empty_adj.size == 0 and empty_rej.size == 0
    assert stats.holm([0.9, 0.8])[0].tolist() == [1.0, 1.0]


def _seed_bootstrap_reference(scores: list[float], reps: int, seed: int) -> list[float]:
    rng = np.random.default_rng(seed)
    return [
        float(np.mean([scores[j] for j in rng.integers(0, len(scores), size=len(scores))]))
        for _ in range(reps)
    ]


def test_seed_summary_matches_plain_loop() -> None:
    scores = [0.31, 0.29, 0.35, 0.40, 0.30]
    got = stats.seed_summary(scores, n_bootstrap=500, seed=4)
    means = _seed_bootstrap_reference(scores, 500, seed=4)
    assert got["n"] == 5
    assert got["mean"] == pytest.approx(0.33)
    assert got["std"] == pytest.approx(np.std(scores, ddof=1))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx(
        tuple(np.percentile(means, [2.5, 97.5]))
    )
    assert min(scores) <= got["ci_low"] < got["mean"] < got["ci_high"] <= max(scores)


def test_seed_summary_blocks_and_single_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = np.linspace(0.0, 1.0, 7)
    whole = stats.seed_summary(scores, n_bootstrap=300, seed=2)
    monkeypatch.setattr(stats, "_BOOTSTRAP_BLOCK", 14)  # 2 rows per block
    assert stats.seed_summary(scores, n_bootstrap=300, seed=2) == pytest.approx(whole)
    single = stats.seed_summary([0.5])
    assert single == {"n": 1, "mean": 0.5, "std": None, "ci_low": None, "ci_high": None}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")]])
def test_seed_summary_rejects_bad_input(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        stats.seed_summary(bad)
