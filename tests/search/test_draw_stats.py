"""Known-answer tests for cellsearch.search.report.draw_stats (failed draws counted).

References are independent: brute-force enumeration of every equally likely
draw sequence or every split of the pooled draws, scipy, and the normal formula
written out by hand.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from cellsearch.search.report import draw_stats as ds
from cellsearch.search.report import stats

FAILED = None  # a failed draw in the brute-force references


def _pool(completed: list[float], failed: int) -> list[float | None]:
    return [*completed, *([FAILED] * failed)]


def _key(value: float | None, maximize: bool) -> float:
    """Mirrored value; a failed draw is worse than everything."""
    if value is None:
        return -math.inf
    return value if maximize else -value


def _brute_best(
    completed: list[float], failed: int, n: int, maximize: bool, floor: float | None
) -> dict[str, float]:
    """Enumerate all N^n draw sequences of the pooled draws."""
    pool = _pool(completed, failed)
    bests: list[float] = []
    all_failed = 0
    for seq in itertools.product(pool, repeat=n):
        done = [v for v in seq if v is not None]
        if done:
            bests.append(max(done) if maximize else min(done))
        else:
            all_failed += 1
    total = len(pool) ** n
    out = {"p_all_failed": all_failed / total}
    if bests:
        out.update(mean=float(np.mean(bests)), std=float(np.std(bests)))
    if floor is not None:
        with_floor = bests + [floor] * all_failed
        out.update(mean_f=float(np.mean(with_floor)), std_f=float(np.std(with_floor)))
    return out


CASES = [
    ([0.5, 0.6, 0.7, 0.9], 0),
    ([0.5, 0.6, 0.6], 2),
    ([1.5], 3),
    ([2.0, -1.0], 1),
]


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize(("completed", "failed"), CASES)
def test_expected_best_matches_brute_force(
    completed: list[float], failed: int, maximize: bool
) -> None:
    floor = -5.0 if maximize else 5.0
    draws = ds.Draws.of(completed, failed, maximize=maximize)
    got = ds.expected_best(draws, [1, 2, 3, 4], floor=floor)
    assert got["n"] == [1, 2, 3, 4] and got["floor"] == floor
    for k, n in enumerate(got["n"]):
        want = _brute_best(completed, failed, n, maximize, floor)
        assert got["p_all_failed"][k] == pytest.approx(want["p_all_failed"], abs=1e-12)
        assert got["mean"][k] == pytest.approx(want["mean"], abs=1e-12)
        assert got["std"][k] == pytest.approx(want["std"], abs=1e-9)
        assert got["mean_with_floor"][k] == pytest.approx(want["mean_f"], abs=1e-12)
        assert got["std_with_floor"][k] == pytest.approx(want["std_f"], abs=1e-9)


def test_expected_best_floor_above_some_scores_still_ranks_failed_last() -> None:
    # The floor only scores a search that completed nothing: a completed 0.1 still
    # beats a failed draw even though the floor (0.3) is higher.
    draws = ds.Draws.of([0.1, 0.8], 1)
    got = ds.expected_best(draws, [1, 2, 3], floor=0.3)
    for k, n in enumerate([1, 2, 3]):
        want = _brute_best([0.1, 0.8], 1, n, True, 0.3)
        assert got["mean_with_floor"][k] == pytest.approx(want["mean_f"])


def test_expected_best_without_failures_is_dodge_evp() -> None:
    scores = np.random.default_rng(4).normal(size=9)
    for maximize in (True, False):
        got = ds.expected_best(ds.Draws.of(scores, maximize=maximize))
        mean, std = stats.expected_max(scores, maximize=maximize)
        np.testing.assert_allclose(got["mean"], mean, atol=1e-12)
        np.testing.assert_allclose(got["std"], std, atol=1e-9)
        assert got["p_all_failed"] == [0.0] * 9
        assert got["mean_with_floor"] is None and got["std_with_floor"] is None


def test_expected_best_reference_toy_check_with_failures() -> None:
    # [0.5, 0.6, 0.7, 0.9] plus 4 failed: P(all of 2 failed) = 1/4, and given a
    # completed draw the best is v_i with mass ((4+i)/8)^2 - ((3+i)/8)^2.
    got = ds.expected_best(ds.Draws.of([0.5, 0.6, 0.7, 0.9], 4), [2])
    masses = np.array([25 - 16, 36 - 25, 49 - 36, 64 - 49]) / 64
    assert got["p_all_failed"][0] == pytest.approx(0.25)
    assert got["mean"][0] == pytest.approx(masses @ [0.5, 0.6, 0.7, 0.9] / 0.75)


def test_expected_best_all_failed() -> None:
    got = ds.expected_best(ds.Draws.of([], 3), [1, 5], floor=0.17)
    assert got["mean"] == [None, None] and got["std"] == [None, None]
    assert got["p_all_failed"] == [1.0, 1.0]
    assert got["mean_with_floor"] == pytest.approx([0.17, 0.17])
    assert got["std_with_floor"] == pytest.approx([0.0, 0.0])


def test_expected_best_large_study_is_finite_and_monotone() -> None:
    rng = np.random.default_rng(1)
    draws = ds.Draws.of(rng.normal(size=7000), 3000, maximize=False)
    got = ds.expected_best(draws, [1, 10, 100, 10_000])
    assert all(math.isfinite(m) for m in got["mean"])
    assert np.all(np.diff(got["mean"]) < 0)  # minimising: more draws, lower best
    assert got["p_all_failed"][0] == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"completed": [np.nan]}, "finite"), ({"completed": [1.0], "failed": -1}, "failed")],
)
def test_draws_reject_bad_input(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ds.Draws.of(**kwargs)  # type: ignore[arg-type]


def test_functions_reject_empty_draws_and_mixed_directions() -> None:
    empty, up, down = ds.Draws.of([]), ds.Draws.of([1.0]), ds.Draws.of([1.0], maximize=False)
    with pytest.raises(ValueError):
        ds.expected_best(empty)
    with pytest.raises(ValueError):
        ds.expected_best(up, [0])
    with pytest.raises(ValueError):
        ds.p_best_of_n_beats(up, down, 1)
    with pytest.raises(ValueError):
        ds.censored_rank_test(up, empty)


def _brute_p(a: ds.Draws, b: ds.Draws, n: int) -> float:
    pool_a, pool_b = a.ranked().tolist(), b.ranked().tolist()  # failed = -inf
    total = 0.0
    for da in itertools.product(pool_a, repeat=n):
        for db in itertools.product(pool_b, repeat=n):
            ma, mb = max(da), max(db)
            total += 1.0 if ma > mb else 0.5 if ma == mb else 0.0
    return total / (len(pool_a) ** n * len(pool_b) ** n)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("maximize", [True, False])
def test_p_best_of_n_beats_matches_brute_force(n: int, maximize: bool) -> None:
    a = ds.Draws.of([0.1, 0.5, 0.5], 2, maximize=maximize)
    b = ds.Draws.of([0.2, 0.5], 1, maximize=maximize)
    got = ds.p_best_of_n_beats(a, b, n)
    assert got == pytest.approx(_brute_p(a, b, n), abs=1e-12)
    assert got + ds.p_best_of_n_beats(b, a, n) == pytest.approx(1.0)


def test_p_best_of_n_beats_all_failed_sides() -> None:
    none_a, none_b = ds.Draws.of([], 2), ds.Draws.of([], 5)
    some = ds.Draws.of([3.0], 1)
    assert ds.p_best_of_n_beats(none_a, none_b, 3) == pytest.approx(0.5)  # failed ties
    # some's best is failed only if both draws failed: 1/4, then a tie.
    assert ds.p_best_of_n_beats(some, none_a, 2) == pytest.approx(0.75 + 0.25 / 2)
    assert ds.p_best_of_n_beats(none_a, some, 2) == pytest.approx(0.125)


def test_p_best_of_n_beats_without_failures_matches_stats() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=15).round(1), rng.normal(size=11).round(1)
    for n in (1, 4, 30):
        want = stats.p_best_of_n_beats(a, b, n, maximize=False)
        got = ds.p_best_of_n_beats(
            ds.Draws.of(a, maximize=False), ds.Draws.of(b, maximize=False), n
        )
        assert got == pytest.approx(want, abs=1e-12)


def _u_of(xa: list[float], xb: list[float]) -> float:
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xa for y in xb)


def _brute_permutation(a: ds.Draws, b: ds.Draws) -> tuple[float, float]:
    """Effect and doubled-tail two-sided p over every split of the pooled draws."""
    pooled = [*a.ranked().tolist(), *b.ranked().tolist()]
    u_obs = _u_of(a.ranked().tolist(), b.ranked().tolist())
    us = []
    for chosen in itertools.combinations(range(len(pooled)), a.size):
        rest = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        us.append(_u_of([pooled[i] for i in chosen], rest))
    arr = np.array(us)
    lower, upper = np.mean(arr <= u_obs + 1e-9), np.mean(arr >= u_obs - 1e-9)
    return u_obs / (a.size * b.size), min(1.0, 2.0 * float(min(lower, upper)))


PERMUTATION_CASES = [
    (([1.0, 2.0, 3.0], 0), ([4.0, 5.0, 6.0], 0)),  # perfect separation, 3 vs 3
    (([0.3, 0.9], 2), ([0.5], 3)),  # failed draws on both sides
    (([0.3, 0.3, 0.9], 1), ([0.3, 0.5], 2)),  # value ties and failed ties
    (([], 3), ([0.1, 0.2], 1)),  # one side all failed
    (([0.4, 1.1, 2.5, 0.2, 0.8], 0), ([0.3, 0.6, 0.7, 1.9], 2)),
]


@pytest.mark.parametrize("maximize", [True, False])
@pytest.mark.parametrize(("spec_a", "spec_b"), PERMUTATION_CASES)
def test_censored_rank_test_exact_matches_permutation_enumeration(
    spec_a: tuple[list[float], int], spec_b: tuple[list[float], int], maximize: bool
) -> None:
    a = ds.Draws.of(spec_a[0], spec_a[1], maximize=maximize)
    b = ds.Draws.of(spec_b[0], spec_b[1], maximize=maximize)
    got = ds.censored_rank_test(a, b)
    effect, p_value = _brute_permutation(a, b)
    assert got.method == "exact"
    assert got.effect == pytest.approx(effect)
    assert got.p_value == pytest.approx(p_value, abs=1e-12)
    assert got.effect == pytest.approx(ds.p_best_of_n_beats(a, b, 1))
    swapped = ds.censored_rank_test(b, a)
    assert swapped.p_value == pytest.approx(got.p_value)
    assert swapped.effect == pytest.approx(1.0 - got.effect)


def test_censored_rank_test_three_vs_three_floor() -> None:
    got = ds.censored_rank_test(ds.Draws.of([4.0, 5.0, 6.0]), ds.Draws.of([], 3))
    assert got.effect == 1.0 and got.p_value == pytest.approx(0.1)  # 2 / C(6, 3)


def test_censored_rank_test_without_ties_matches_scipy_exact() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=7), rng.normal(0.8, 1.0, size=8)
    got = ds.censored_rank_test(ds.Draws.of(a), ds.Draws.of(b))
    want = sps.mannwhitneyu(a, b, alternative="two-sided", method="exact")
    assert got.p_value == pytest.approx(want.pvalue, abs=1e-12)
    assert got.effect == pytest.approx(want.statistic / 56)


def _normal_formula(a: ds.Draws, b: ds.Draws) -> float:
    """Tie-corrected normal approximation with continuity correction, by hand."""
    pooled = np.concatenate([a.ranked(), b.ranked()])
    n_a, n_b, total = a.size, b.size, a.size + b.size
    u = _u_of(a.ranked().tolist(), b.ranked().tolist())
    _, ties = np.unique(pooled, return_counts=True)
    correction = np.sum(ties**3 - ties) / (total * (total - 1))
    sigma = math.sqrt(n_a * n_b / 12.0 * (total + 1 - correction))
    z = (abs(u - n_a * n_b / 2.0) - 0.5) / sigma
    return min(1.0, 2.0 * sps.norm.sf(z))


def test_censored_rank_test_asymptotic_matches_normal_formula() -> None:
    rng = np.random.default_rng(6)
    a = ds.Draws.of(rng.normal(size=30).round(1), 15, maximize=False)
    b = ds.Draws.of(rng.normal(0.4, 1.0, size=50).round(1), 10, maximize=False)
    assert a.size * (a.size + b.size) > ds.EXACT_LIMIT
    got = ds.censored_rank_test(a, b)
    assert got.method == "asymptotic"
    assert got.p_value == pytest.approx(_normal_formula(a, b), rel=1e-10)
    assert got.effect == pytest.approx(ds.p_best_of_n_beats(a, b, 1))


def test_censored_rank_test_exact_close_to_normal_at_the_limit() -> None:
    rng = np.random.default_rng(7)
    a = ds.Draws.of(rng.normal(size=20), 10)
    b = ds.Draws.of(rng.normal(0.5, 1.0, size=25), 5)
    got = ds.censored_rank_test(a, b)
    assert got.method == "exact"
    assert got.p_value == pytest.approx(_normal_formula(a, b), abs=0.01)


def test_censored_rank_test_all_tied_is_not_significant() -> None:
    assert ds.censored_rank_test(ds.Draws.of([], 2), ds.Draws.of([], 4)).p_value == 1.0
    big_a, big_b = ds.Draws.of([], 60), ds.Draws.of([], 70)
    got = ds.censored_rank_test(big_a, big_b)
    assert got.method == "asymptotic" and got.p_value == 1.0 and got.effect == 0.5


def test_failed_draws_count_against_a_cell() -> None:
    # Same completed scores; b also has 6 failed draws, so a must come out ahead.
    scores = [0.2, 0.4, 0.6, 0.8]
    a, b = ds.Draws.of(scores), ds.Draws.of(scores, 6)
    test = ds.censored_rank_test(a, b)
    assert test.effect > 0.5
    assert ds.p_best_of_n_beats(a, b, 3) > 0.5
    assert stats.mann_whitney(scores, scores)[1] == 1.0  # completed-only sees nothing


def _bootstrap_reference(
    draws: ds.Draws, n: int, reps: int, seed: int, floor: float | None
) -> list[float]:
    rng = np.random.default_rng(seed)
    ranked = draws.ranked()
    means = []
    for _ in range(reps):
        pick = ranked[rng.integers(0, draws.size, size=draws.size)]
        done = pick[np.isfinite(pick)]
        if floor is not None:  # floor below every score: plain EVP with the floor as a score
            scores = np.where(np.isfinite(pick), pick, floor)
            means.append(float(stats.expected_max(scores, [n])[0][0]))
        elif done.size:
            sub = ds.Draws.of(done, int(pick.size - done.size))
            means.append(ds.expected_best(sub, [n])["mean"][0])
    return means


@pytest.mark.parametrize("floor", [None, -3.0])
@pytest.mark.parametrize(("size", "failed"), [(12, 5), (2, 3)])
def test_expected_best_ci_matches_plain_loop(size: int, failed: int, floor: float | None) -> None:
    values = np.random.default_rng(8).normal(size=size)
    draws = ds.Draws.of(values, failed)
    means = _bootstrap_reference(draws, 3, 400, seed=9, floor=floor)
    if size == 2 and floor is None:
        assert len(means) < 400  # replicates with no completed draw were skipped
    want = np.percentile(means, [2.5, 97.5])
    got = ds.expected_best_ci(draws, 3, floor=floor, n_bootstrap=400, seed=9)
    assert got == pytest.approx(tuple(want))


def test_expected_best_ci_minimisation_blocks_and_small_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.arange(20.0)
    low_max = ds.expected_best_ci(ds.Draws.of(-values, 4), 5, seed=3)
    low_min = ds.expected_best_ci(ds.Draws.of(values, 4, maximize=False), 5, seed=3)
    assert low_min == pytest.approx((-low_max[1], -low_max[0]))  # type: ignore[operator]
    monkeypatch.setattr(stats, "_BOOTSTRAP_BLOCK", 50)  # 2 rows per block
    assert ds.expected_best_ci(ds.Draws.of(-values, 4), 5, seed=3) == pytest.approx(low_max)
    assert ds.expected_best_ci(ds.Draws.of([1.0], 9), 2) == (None, None)


def test_expected_best_ci_covers_the_true_expected_best() -> None:
    # Uniform(0, 1) scores: the best of 3 draws has expectation 3/4.
    rng = np.random.default_rng(10)
    hits = 0
    for study in range(200):
        draws = ds.Draws.of(rng.uniform(size=60))
        low, high = ds.expected_best_ci(draws, 3, n_bootstrap=400, seed=study)
        hits += low <= 0.75 <= high  # type: ignore[operator]
    assert 0.88 <= hits / 200 <= 0.99


def test_can_show_and_shown() -> None:
    one, two = ds.Draws.of([1.0], 5), ds.Draws.of([1.0, 2.0])
    assert not ds.can_show(one) and ds.can_show(two) and not ds.can_show()
    assert not ds.can_show(two, one) and ds.can_show(two, 3)
    assert ds.shown(0.7, two, 2) == 0.7 and ds.shown(0.7, two, one) is None
    assert ds.can_show(one, minimum=1)
