"""Known-answer tests for cellsearch.search.report.design_power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from cellsearch.search.report import design_power as dp
from cellsearch.search.report import draw_stats as ds


@pytest.mark.parametrize("n", range(1, 11))
def test_min_attainable_p_balanced_closed_form(n: int) -> None:
    assert dp.min_attainable_p(n, n) == pytest.approx(min(1.0, 2.0 / math.comb(2 * n, n)))


@pytest.mark.parametrize(("n_a", "n_b"), [(3, 3), (2, 7), (9, 4), (1, 30)])
def test_min_attainable_p_unbalanced_closed_form(n_a: int, n_b: int) -> None:
    want = min(1.0, 2.0 / math.comb(n_a + n_b, n_a))
    assert dp.min_attainable_p(n_a, n_b) == pytest.approx(want)
    assert dp.min_attainable_p(n_b, n_a) == pytest.approx(want)


def test_min_attainable_p_three_vs_three_is_one_tenth() -> None:
    # The measured adding-problem study: 3 trials per cell can never reach 0.05.
    assert dp.min_attainable_p(3, 3) == pytest.approx(0.1)


def test_min_attainable_p_asymptotic_regime_is_the_normal_formula() -> None:
    n_a, n_b = 40, 60
    assert min(n_a, n_b) * (n_a + n_b) > ds.EXACT_LIMIT
    sigma = math.sqrt(n_a * n_b * (n_a + n_b + 1) / 12.0)
    want = 2.0 * sps.norm.sf((n_a * n_b / 2.0 - 0.5) / sigma)
    assert dp.min_attainable_p(n_a, n_b) == pytest.approx(want, rel=1e-10)


def test_ties_do_not_lower_the_exact_minimum() -> None:
    tied = ds.censored_rank_test(ds.Draws.of([5.0] * 4), ds.Draws.of([], 4))
    assert tied.p_value == pytest.approx(dp.min_attainable_p(4, 4))


def _needed_closed_form(m: int, alpha: float) -> int:
    n = 1
    while 2.0 / math.comb(2 * n, n) > alpha / m:
        n += 1
    return n


@pytest.mark.parametrize("m", [1, 2, 3, 6, 10, 15, 28, 45])
def test_trials_needed_matches_closed_form(m: int) -> None:
    assert dp.trials_needed(m) == _needed_closed_form(m, 0.05)
    assert dp.trials_needed(m, alpha=0.01) == _needed_closed_form(m, 0.01)


def test_trials_needed_known_values() -> None:
    assert dp.trials_needed(1) == 4  # 2/70 = 0.029 <= 0.05, 2/20 = 0.1 is not
    assert dp.trials_needed(dp.pairs(3)) == 5  # 2/252 <= 0.05/3 < 2/70
    assert dp.pairs(2) == 1 and dp.pairs(6) == 15
    with pytest.raises(ValueError):
        dp.trials_needed(0)


def test_trials_for_power_noether_closed_form() -> None:
    # (z_0.975 + z_0.8)^2 / (3 * 0.25^2) = 41.86 draws in all: 21 per group.
    z = 1.959963984540054 + 0.8416212335729143
    assert dp.trials_for_power(0.75) == math.ceil(z**2 / (3 * 0.25**2) / 2) == 21
    assert dp.trials_for_power(0.25) == 21
    z3 = sps.norm.ppf(1 - 0.05 / 6) + sps.norm.ppf(0.9)
    want = math.ceil(z3**2 / (3 * 0.1**2) / 2)
    assert dp.trials_for_power(0.6, m_pairs=3, power=0.9) == want
    assert dp.trials_for_power(0.5) is None


def test_trials_for_power_never_below_attainability() -> None:
    # Noether gives 1 per group here, but 4 are needed to reach p <= 0.05 at all.
    assert dp.trials_for_power(1.0, power=0.2) == dp.trials_needed(1) == 4
    with pytest.raises(ValueError):
        dp.trials_for_power(1.5)


def test_trials_for_power_reaches_about_the_wanted_power() -> None:
    # Normal scores shifted so that P(one draw of A beats one of B) = 0.75.
    n = dp.trials_for_power(0.75)
    assert n is not None
    shift = math.sqrt(2.0) * sps.norm.ppf(0.75)
    rng = np.random.default_rng(0)
    a = rng.normal(shift, 1.0, size=(3000, n))
    b = rng.normal(0.0, 1.0, size=(3000, n))
    p = sps.mannwhitneyu(a, b, axis=1, method="asymptotic").pvalue
    assert 0.78 <= np.mean(p <= 0.05) <= 0.9
