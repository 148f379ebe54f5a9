"""Statistics for the comparison report: pure numpy/scipy functions.

Every function takes plain arrays of objective values and a direction flag
(``maximize``); minimisation is handled by mirroring (negating) the scores, so
"best" always means the maximum of the mirrored values.

- :func:`expected_max`: expected best score after ``n`` trials and its spread
  (Dodge et al. 2019, "Show Your Work").
- :func:`bootstrap_ci`: seeded percentile bootstrap interval for the best value.
- :func:`p_best_of_n_beats`: exact probability that the best of ``n`` draws from
  one empirical distribution beats the best of ``n`` draws from another.
- :func:`mann_whitney`: the significance test used between cell types.
- :func:`holm`: Holm-Bonferroni step-down adjustment.
- :func:`seed_summary`: mean, spread and bootstrap interval of one configuration
  re-evaluated with several seeds.

Statistics that count failed (pruned, diverged, errored) trials as draws are in
:mod:`cellsearch.search.report.draw_stats`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

FloatArray = NDArray[np.float64]

# Bootstrap replicates are drawn in blocks of at most this many indices, so memory
# stays bounded for large studies while the work stays vectorised.
_BOOTSTRAP_BLOCK = 2_000_000


def resamples(
    size: int, n_bootstrap: int, seed: int | Sequence[int]
) -> Iterator[tuple[int, NDArray[np.int64]]]:
    """Bootstrap resamples of ``range(size)``, in blocks: ``(first replicate, indices)``.

    Replicate ``b`` is row ``b`` of ``numpy.random.default_rng(seed).integers(0, size,
    size=(n_bootstrap, size))`` (rows drawn in order, so the result does not depend on the
    block size); blocks hold at most about two million indices, bounding memory.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOTSTRAP_BLOCK // size)
    for start in range(0, n_bootstrap, rows):
        stop = min(n_bootstrap, start + rows)
        yield start, rng.integers(0, size, size=(stop - start, size))


def _as_scores(scores: ArrayLike, maximize: bool) -> FloatArray:
    """Return finite scores as a 1-D float array, negated when minimising."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("at least one score is required")
    if not np.all(np.isfinite(values)):
        raise ValueError("scores must be finite")
    return values if maximize else -values


def expected_max(
    scores: ArrayLike, ns: ArrayLike | None = None, *, maximize: bool = True
) -> tuple[FloatArray, FloatArray]:
    """Expected best score after ``n`` trials, and its standard deviation.

    With the ``N`` scores sorted so that ``v_1`` is the worst and ``v_N`` the best,
    the best of ``n`` draws with replacement equals ``v_i`` with probability
    ``p_i = (i/N)^n - ((i-1)/N)^n``; the mean is ``sum_i p_i v_i`` and the spread
    ``sqrt(sum_i p_i (v_i - mean)^2)`` (Dodge et al. 2019).

    Args:
        scores: Observed objective values, one per trial.
        ns: Trial counts ``n`` at which to evaluate; defaults to ``1..N``.
        maximize: False to treat lower values as better (the result is then the
            expected minimum, in the original units).

    Returns:
        ``(mean, std)``, arrays with one entry per ``n``.

    Raises:
        ValueError: If ``scores`` is empty or not finite, or an ``n`` is below 1.
    """
    values = np.sort(_as_scores(scores, maximize))
    size = values.size
    grid = np.arange(1, size + 1) if ns is None else np.asarray(ns, dtype=np.int64).ravel()
    if grid.size and grid.min() < 1:
        raise ValueError("n must be at least 1")
    ranks = np.arange(size + 1, dtype=np.float64) / size  # (N+1,)
    cdf = ranks[None, :] ** grid[:, None].astype(np.float64)  # (len(ns), N+1)
    probs = np.diff(cdf, axis=1)  # (len(ns), N)
    mean = probs @ values
    var = np.einsum("kn,kn->k", probs, (values[None, :] - mean[:, None]) ** 2)
    std = np.sqrt(np.maximum(var, 0.0))
    return (mean if maximize else -mean), std


def bootstrap_ci(
    scores: ArrayLike,
    *,
    maximize: bool = True,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | Sequence[int] = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the best value.

    Replicate ``b`` resamples the ``N`` scores with replacement using
    ``numpy.random.default_rng(seed).integers(0, N, size=N)`` (rows drawn in order,
    so the result equals a plain loop over replicates with the same generator)
    and keeps the best (max, or min when minimising). The interval is the
    ``(1-confidence)/2`` and ``(1+confidence)/2`` percentiles (numpy's default
    linear interpolation) of those replicate bests.

    Args:
        scores: Observed objective values.
        maximize: False when lower values are better.
        n_bootstrap: Number of bootstrap replicates.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed (or seed sequence) of the numpy generator.

    Returns:
        ``(low, high)`` in the original units.

    Raises:
        ValueError: On empty or non-finite scores or invalid settings.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    mirrored = _as_scores(values, maximize)
    if n_bootstrap < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("n_bootstrap must be >= 1 and confidence in (0, 1)")
    bests = np.empty(n_bootstrap)
    for start, idx in resamples(values.size, n_bootstrap, seed):  # idx: (rows, N)
        bests[start : start + len(idx)] = mirrored[idx].max(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(bests, [tail, 100.0 - tail])
    if maximize:
        return float(low), float(high)
    return float(-high), float(-low)


def p_best_of_n_beats(a: ArrayLike, b: ArrayLike, n: int, *, maximize: bool = True) -> float:
    """Probability that the best of ``n`` draws from ``a`` beats the best of ``n`` from ``b``.

    Draws are with replacement from the empirical distributions of ``a`` and
    ``b``; ties count one half, so ``p(a, b) + p(b, a) == 1``. With ``F`` the
    empirical CDF of the mirrored scores, the best of ``n`` has CDF ``F^n``, and

    ``P = sum_u P(M_b = u) * (P(M_a > u) + P(M_a = u) / 2)``

    over the distinct values ``u`` of ``b``. For ``n = 1`` this equals the
    Mann-Whitney ``U`` of ``a`` against ``b`` divided by ``len(a) * len(b)``.

    Args:
        a: Scores of the first group.
        b: Scores of the second group.
        n: Number of draws (trials) per group, at least 1.
        maximize: False when lower values are better.

    Returns:
        The probability in [0, 1].
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    xa = np.sort(_as_scores(a, maximize))
    xb = np.sort(_as_scores(b, maximize))
    support, counts = np.unique(xb, return_counts=True)
    cdf_b = (np.cumsum(counts) / xb.size) ** n
    mass_b = np.diff(cdf_b, prepend=0.0)  # P(M_b = u)
    below_a = np.searchsorted(xa, support, side="left") / xa.size  # F_a(u-)
    upto_a = np.searchsorted(xa, support, side="right") / xa.size  # F_a(u)
    cdf_a_le, cdf_a_lt = upto_a**n, below_a**n
    win = 1.0 - cdf_a_le
    tie = cdf_a_le - cdf_a_lt
    return float(np.clip(mass_b @ (win + 0.5 * tie), 0.0, 1.0))


def mann_whitney(a: ArrayLike, b: ArrayLike, *, maximize: bool = True) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test between two groups of scores.

    Args:
        a: Scores of the first group.
        b: Scores of the second group.
        maximize: False when lower values are better.

    Returns:
        ``(effect, p_value)``: ``effect`` is ``P(a better than b) + P(tie)/2`` for one
        draw each (``U / (len(a) len(b))``), ``p_value`` is scipy's two-sided p-value
        (exact for small tie-free samples, else the tie-corrected normal approximation).
    """
    xa, xb = _as_scores(a, maximize), _as_scores(b, maximize)
    result = sps.mannwhitneyu(xa, xb, alternative="two-sided", method="auto")
    effect = float(result.statistic) / (xa.size * xb.size)
    return effect, float(result.pvalue)


def holm(
    p_values: Sequence[float] | ArrayLike, alpha: float = 0.05
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Holm-Bonferroni adjustment.

    Sorting the ``m`` p-values ascending, the adjusted value of the ``k``-th
    (1-based) is ``max_{j<=k} min(1, (m - j + 1) p_(j))``; a hypothesis is
    rejected when its adjusted value is ``<= alpha``, which is the step-down rule
    "reject while ``p_(k) <= alpha / (m - k + 1)``".

    Args:
        p_values: Unadjusted p-values.
        alpha: Family-wise error rate.

    Returns:
        ``(adjusted, reject)`` in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    if m == 0:
        return np.empty(0), np.empty(0, dtype=bool)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted, adjusted <= alpha


def seed_summary(
    scores: ArrayLike,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int | Sequence[int] = 0,
) -> dict[str, Any]:
    """Summary of one configuration retrained with several seeds.

    The interval is a seeded percentile bootstrap of the mean over seeds: replicate
    ``b`` resamples the ``k`` scores with
    ``numpy.random.default_rng(seed).integers(0, k, size=k)`` (rows drawn in order)
    and takes their mean. With very few seeds it is narrow (2 seeds: the replicate
    means take only 3 values), so read it together with ``n``.

    Args:
        scores: One finite score per seed (direction does not matter).
        n_bootstrap: Number of bootstrap replicates.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed (or seed sequence) of the bootstrap's generator.

    Returns:
        ``{"n", "mean", "std", "ci_low", "ci_high"}``; ``std`` is the sample
        standard deviation (``ddof=1``). With one score, ``std`` and the interval
        are None.

    Raises:
        ValueError: On empty or non-finite scores or invalid settings.
    """
    values = _as_scores(scores, True)
    if n_bootstrap < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("n_bootstrap must be >= 1 and confidence in (0, 1)")
    size = values.size
    out: dict[str, Any] = {
        "n": size,
        "mean": float(values.mean()),
        "std": None,
        "ci_low": None,
        "ci_high": None,
    }
    if size < 2:
        return out
    means = np.empty(n_bootstrap)
    for start, idx in resamples(size, n_bootstrap, seed):  # idx: (rows, k)
        means[start : start + len(idx)] = values[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    out.update(std=float(values.std(ddof=1)), ci_low=float(low), ci_high=float(high))
    return out
