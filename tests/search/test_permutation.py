"""The comparison's permutation test of P(best of n beats), against independent answers."""

from __future__ import annotations

import numpy as np
import pytest

from cellsearch.search.report import permutation as bt
from cellsearch.search.report.draw_stats import Draws, censored_rank_test, p_best_of_n_beats


def test_for_one_draw_it_is_the_censored_rank_test() -> None:
    a = Draws.of([0.1, 0.4, 0.35, 0.2], 2, maximize=False)
    b = Draws.of([0.5, 0.3, 0.6], 1, maximize=False)
    ours, gehan = bt.best_of_n_test(a, b, 1), censored_rank_test(a, b)
    assert ours.method == gehan.method == "exact"
    assert ours.effect == pytest.approx(gehan.effect)
    assert ours.p_value == pytest.approx(gehan.p_value)


def test_the_effect_is_the_reports_best_of_n_probability() -> None:
    a = Draws.of([3.0, 1.0, 2.0], 4, maximize=True)
    b = Draws.of([2.5, 0.5], 1, maximize=True)
    for n in (1, 2, 5, 9):
        assert bt.best_of_n_test(a, b, n).effect == pytest.approx(p_best_of_n_beats(a, b, n))


def test_complete_separation_reaches_the_smallest_exact_p() -> None:
    a = Draws.of([1.0, 2.0, 3.0, 4.0], maximize=False)
    b = Draws.of([5.0, 6.0, 7.0, 8.0], maximize=False)
    result = bt.best_of_n_test(a, b, 4)
    assert result.effect == pytest.approx(1.0)
    assert result.p_value == pytest.approx(2 / 70)  # the two extreme splits of C(8, 4)


def test_large_pools_use_random_splits_seeded() -> None:
    rng = np.random.default_rng(0)
    a = Draws.of(rng.normal(size=15), 5, maximize=False)
    b = Draws.of(rng.normal(size=15) + 1.0, 5, maximize=False)
    first = bt.best_of_n_test(a, b, 10, seed=3)
    assert first.method == "permutation"  # C(40, 20) splits are too many to enumerate
    assert first == bt.best_of_n_test(a, b, 10, seed=3)
    assert 1 / (1 + bt.PERMUTATIONS) <= first.p_value <= 1.0
    equal = bt.best_of_n_test(a, Draws.of(a.values * -1, a.failed, maximize=False), 10)
    assert equal.p_value == pytest.approx(1.0, abs=0.05)


def test_the_report_switches_to_the_rank_test_above_the_pool_limit() -> None:
    big = Draws.of(np.arange(300.0), 10, maximize=True)
    other = Draws.of(np.arange(200.0) + 0.5, 0, maximize=True)
    assert bt.comparison_test(big, other, 5) == censored_rank_test(big, other)
    small = Draws.of([1.0, 2.0], 1, maximize=True)
    assert bt.comparison_test(small, small, 2).method == "exact"


@pytest.mark.parametrize(
    ("a", "b", "n", "message"),
    [
        (Draws.of([], 0), Draws.of([1.0]), 1, "at least one finished draw"),
        (Draws.of([1.0]), Draws.of([1.0], maximize=False), 1, "one direction"),
        (Draws.of([1.0]), Draws.of([2.0]), 0, "n must be at least 1"),
    ],
)
def test_bad_input_is_refused(a: Draws, b: Draws, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bt.best_of_n_test(a, b, n)
