"""The rank tests behind the cross-task comparison (:mod:`.suite_stats`).

The Friedman test on a rank matrix (tie-corrected, with the Iman-Davenport F), the
two-sided Wilcoxon signed-rank test (exact where scipy would permute, by convolution),
the fewest tasks that can reach significance, Nemenyi's critical difference, and the
groups ("cliques") a critical-difference diagram joins. Pure numpy/scipy; references in
REFERENCES.md (Demsar 2006).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Nemenyi q_0.05 for k = 2..6 (Demsar 2006, Table 5a; REFERENCES.md). Other k and
# alpha come from the studentized range: q = studentized_range.ppf(1-alpha, k, inf)/sqrt 2.
_Q_005 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850}

# scipy's wilcoxon runs a permutation test (2^n sign flips, about a second per pair
# at n = 13) when the differences hold zeros or ties and n <= 13; below this size we
# compute the same exact conditional distribution by convolution instead.
_SCIPY_PERMUTATION_MAX_N = 13


def friedman(ranks: FloatArray, alpha: float = 0.05) -> dict[str, Any]:
    """Friedman test on a rank matrix, with the tie correction and the Iman-Davenport F.

    ``chi2 = 12N/(k(k+1)) [sum_j R_j^2 - k(k+1)^2/4] / C`` (Demsar 2006, eq. for
    chi2_F) with ``C = 1 - sum (t^3 - t) / (N (k^3 - k))`` over the groups of ``t``
    tied cells in each task; without ties ``C = 1``. This equals
    ``scipy.stats.friedmanchisquare`` (which refuses ``k < 3``; the formula holds for
    ``k = 2`` too). Iman-Davenport: ``F = (N-1) chi2 / (N(k-1) - chi2)`` on ``k-1`` and
    ``(k-1)(N-1)`` degrees of freedom. When every task is a complete tie the statistic
    is 0 with p = 1 (scipy returns NaN); with perfect agreement F is infinite (None).

    Args:
        ranks: ``(N, k)`` per-task ranks, ``k >= 2``, ``N >= 2``.
        alpha: Level for ``reject``.

    Returns:
        Dict with ``statistic``, ``p_value``, ``df``, ``kendall_w``, ``reject`` and
        ``iman_davenport`` (``statistic``, ``p_value``, ``df1``, ``df2``).
    """
    n, k = ranks.shape
    centred = ranks - (k + 1) / 2.0
    tie_free = (k**3 - k) / 12.0  # sum of squared centred ranks of one untied task
    # Average ranks shrink that sum by sum(t^3 - t)/12 per task, so C is the ratio.
    correction = float(np.sum(centred**2)) / (n * tie_free)
    avg = ranks.mean(axis=0)
    plain = 12.0 * n / (k * (k + 1)) * (float(np.sum(avg**2)) - k * (k + 1) ** 2 / 4.0)
    if np.all(ranks == ranks[:, :1]):
        chi2, p = 0.0, 1.0
    else:
        chi2 = max(plain / correction, 0.0)
        p = float(sps.chi2.sf(chi2, k - 1))
    df1, df2 = k - 1, (k - 1) * (n - 1)
    denom = n * (k - 1) - chi2
    if denom > 1e-12 * n * k:
        f_stat: float | None = (n - 1) * chi2 / denom
        f_p = float(sps.f.sf(f_stat, df1, df2))
    else:
        f_stat, f_p = None, 0.0
    return {
        "statistic": chi2,
        "p_value": p,
        "df": k - 1,
        "kendall_w": chi2 / (n * (k - 1)),
        "reject": p <= alpha,
        "iman_davenport": {"statistic": f_stat, "p_value": f_p, "df1": df1, "df2": df2},
    }


def _exact_signed_rank_p(diff: FloatArray, ranks: FloatArray) -> float:
    """Two-sided p of the signed-rank sum given its midranks, over all 2^n sign flips."""
    nonzero = diff != 0
    weights = np.rint(2.0 * ranks[nonzero]).astype(np.int64)  # midranks are multiples of 1/2
    counts = np.zeros(int(weights.sum()) + 1)  # counts[s]: sign patterns with 2 R+ = s
    counts[0] = 1.0
    for w in weights:
        shifted = np.zeros_like(counts)
        shifted[w:] = counts[: counts.size - w]
        counts = counts + shifted
    probs = counts / counts.sum()
    observed = int(np.rint(2.0 * ranks[diff > 0].sum()))
    below, above = probs[: observed + 1].sum(), probs[observed:].sum()
    return float(min(1.0, 2.0 * min(below, above)))


def signed_rank_batch(diffs: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Signed-rank tests of each row of ``diffs`` ``(m, n)``: ``(p, r_plus, r_minus)``."""
    m, n = diffs.shape
    ranks = np.asarray(sps.rankdata(np.abs(diffs), axis=1), dtype=np.float64)  # (m, n)
    zero_half = np.where(diffs == 0, ranks, 0.0).sum(axis=1) / 2.0
    r_plus = np.where(diffs > 0, ranks, 0.0).sum(axis=1) + zero_half
    r_minus = np.where(diffs < 0, ranks, 0.0).sum(axis=1) + zero_half
    sorted_abs = np.sort(np.abs(diffs), axis=1)
    irregular = np.any(sorted_abs[:, 1:] == sorted_abs[:, :-1], axis=1) | np.any(
        diffs == 0, axis=1
    )  # ties or zeros: scipy leaves its exact null distribution
    p = np.ones(m)
    active = np.any(diffs != 0, axis=1)  # all-zero rows keep p = 1
    small = n <= _SCIPY_PERMUTATION_MAX_N
    for row in np.flatnonzero(active & irregular & small):
        p[row] = _exact_signed_rank_p(diffs[row], ranks[row])
    # One scipy call per group, so that method="auto" takes each row's own path.
    for group in (active & ~irregular, active & irregular & (not small)):
        if group.any():
            res = sps.wilcoxon(diffs[group], zero_method="zsplit", axis=1)
            p[group] = np.asarray(res.pvalue, dtype=np.float64)
    return p, r_plus, r_minus


def signed_rank_test(diff: ArrayLike) -> dict[str, float]:
    """Two-sided Wilcoxon signed-rank test of paired differences, zeros split evenly.

    Zero differences are ranked and half their rank goes to each sum (Demsar 2006,
    scipy's ``zero_method="zsplit"``). The p-value equals
    ``scipy.stats.wilcoxon(diff, zero_method="zsplit")``: exact without zeros or ties
    (n <= 50); with them, the exact distribution over all sign flips for n <= 13
    (computed here by convolution, as scipy's permutation test takes about a second)
    and the normal approximation above. All-zero differences give p = 1.

    Args:
        diff: Paired differences ``a - b``, one per task.

    Returns:
        Dict with ``statistic`` (``min(R+, R-)``), ``p_value``, ``r_plus``, ``r_minus``.
    """
    d = np.asarray(diff, dtype=np.float64).ravel()
    if d.size == 0 or not np.all(np.isfinite(d)):
        raise ValueError("differences must be finite and non-empty")
    p, r_plus, r_minus = signed_rank_batch(d[None, :])
    plus, minus = float(r_plus[0]), float(r_minus[0])
    return {"statistic": min(plus, minus), "p_value": float(p[0]), "r_plus": plus, "r_minus": minus}


def minimum_tasks(alpha: float = 0.05, n_pairs: int = 1) -> int:
    """Fewest tasks at which a two-sided signed-rank test can reach ``alpha / n_pairs``.

    With ``N`` tasks the smallest exact two-sided p-value is ``2 / 2^N`` (every
    difference has the same sign), so below this ``N`` no corrected test can ever
    reject: 6 tasks for one test at 0.05, 7 for Holm over 3 pairs, 8 over 6 pairs.
    The result is never below 3.
    """
    if not 0.0 < alpha < 1.0 or n_pairs < 1:
        raise ValueError("alpha must be in (0, 1) and n_pairs >= 1")
    n = 3
    while 2.0 ** (1 - n) > alpha / n_pairs:
        n += 1
    return n


@lru_cache(maxsize=64)
def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """Critical value ``q_alpha`` of the Nemenyi test for ``k`` methods (Demsar 2006)."""
    if k < 2:
        raise ValueError("the Nemenyi test needs at least 2 methods")
    if alpha == 0.05 and k in _Q_005:
        return _Q_005[k]
    return float(sps.studentized_range.ppf(1.0 - alpha, k, np.inf) / math.sqrt(2.0))


def critical_difference(k: int, n_tasks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference ``CD = q_alpha sqrt(k (k + 1) / (6 N))``."""
    return nemenyi_q(k, alpha) * math.sqrt(k * (k + 1) / (6.0 * n_tasks))


def cliques(order: Sequence[int], separated: BoolArray) -> list[list[int]]:
    """Maximal runs of consecutive methods (in ``order``) with no separated pair.

    Args:
        order: Method indices sorted by average rank, best first.
        separated: ``(k, k)`` symmetric matrix, True where a corrected test separates.

    Returns:
        The runs as lists of method indices, in order; singletons included. As in
        the usual CD diagram, an unseparated pair split by a method that is separated
        from one of them (a~c, b-c separated, order a, b, c) shares no run.
    """
    k = len(order)
    reach = []  # reach[i]: last position j such that order[i..j] has no separated pair
    j = 0
    for i in range(k):
        j = max(j, i)
        while j + 1 < k and not any(separated[order[j + 1], order[m]] for m in range(i, j + 1)):
            j += 1
        reach.append(j)
    runs = [[order[m] for m in range(i, reach[i] + 1)] for i in range(k)]
    return [run for i, run in enumerate(runs) if i == 0 or reach[i] > reach[i - 1]]
