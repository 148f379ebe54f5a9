"""The significance test of the comparison: is one cell type's best of ``n`` better?

The report's question is which cell type wins *at this budget*: whose best of ``n``
trials beats the other's. Its effect size is ``P(best of n of A beats best of n of B)``
(:func:`cellsearch.search.report.draw_stats.p_best_of_n_beats`), which depends only on
the ranks of the pooled draws, failed draws (pruned, diverged, errored) tied below every
completed one. This module tests it: a two-sided permutation test of that statistic,
whose null distribution comes from re-splitting the pooled draws of the two cell types
at random (every split, when there are few; else a seeded random sample of splits).

For ``n = 1`` the statistic is the Mann-Whitney effect with failed draws tied at the
bottom (Gehan's generalised Wilcoxon for this censoring); for larger ``n`` it weighs
the upper tail, where the best of ``n`` lives. That matters under per-cell pruning: each
cell type loses about the same share of its draws to the pruner, so failed draws tell
the cell types apart only when their shares differ, and a test of the whole
distribution (``n = 1``) spends most of its power on them; the best-of-``n`` statistic
still ranks a cell type pruned or diverging more often lower, as it must.

Above :data:`MAX_POOLED` pooled draws, :func:`comparison_test` uses the rank test of
single draws instead (fast, and powerful at that size).
"""

from __future__ import annotations

import itertools
from math import comb

import numpy as np
from numpy.typing import NDArray

from cellsearch.search.report.draw_stats import Draws, RankTest, censored_rank_test

MAX_POOLED = 400
"""Above this many pooled draws the comparison uses the large-sample rank test instead
(:func:`comparison_test`): the permutations would cost seconds, and at that size the
rank test of single draws has power to spare."""
EXACT_SPLITS = 20_000
"""Every split of the pooled draws is enumerated while there are at most this many."""
PERMUTATIONS = 4_000
"""Random splits drawn above :data:`EXACT_SPLITS` (the smallest p-value is 1/4001)."""
_BLOCK = 1_000
"""Splits evaluated per vectorised block (bounds memory for large pools)."""


def _statistic(labels: NDArray[np.bool_], ends: NDArray[np.int64], n: int) -> NDArray[np.float64]:
    """P(best of n of the labelled side beats the other's), for each row of ``labels``.

    ``labels`` (splits, N) marks side A in the pooled draws sorted ascending;
    ``ends`` are the last indices of the tie groups (the failed draws form the first).
    """
    n_a = int(labels[0].sum())
    n_b = labels.shape[1] - n_a
    cum_a = np.cumsum(labels, axis=1)[:, ends]  # (splits, G): A's draws up to each group
    cum_b = (ends + 1)[None, :] - cum_a
    le_a, le_b = (cum_a / n_a) ** n, (cum_b / n_b) ** n  # best-of-n CDFs at each group
    lt_a = np.concatenate([np.zeros((len(labels), 1)), le_a[:, :-1]], axis=1)
    lt_b = np.concatenate([np.zeros((len(labels), 1)), le_b[:, :-1]], axis=1)
    mass_b = le_b - lt_b  # P(best of B falls in the group)
    return np.einsum("sg,sg->s", mass_b, 1.0 - le_a + 0.5 * (le_a - lt_a))


def _splits(size: int, n_a: int, seed: int) -> tuple[NDArray[np.bool_], bool]:
    """Every split of ``size`` pooled draws into ``n_a`` and the rest, or a random sample."""
    total = comb(size, n_a)
    if total <= EXACT_SPLITS:
        labels = np.zeros((total, size), dtype=bool)
        for row, chosen in enumerate(itertools.combinations(range(size), n_a)):
            labels[row, list(chosen)] = True
        return labels, True
    base = np.zeros(size, dtype=bool)
    base[:n_a] = True
    rng = np.random.default_rng(seed)
    return rng.permuted(np.tile(base, (PERMUTATIONS, 1)), axis=1), False


def best_of_n_test(a: Draws, b: Draws, n: int, *, seed: int = 0) -> RankTest:
    """Two-sided permutation test of ``P(best of n of a beats best of n of b) = 1/2``.

    Args:
        a: Finished draws of the first cell type.
        b: Finished draws of the second, with the same direction.
        n: Draws per cell type in the best-of-``n`` (the per-cell budget).
        seed: Seed of the random splits (used only above :data:`EXACT_SPLITS`).

    Returns:
        :class:`RankTest`: ``effect`` is the observed ``P(best of n of a beats b)``;
        ``p_value`` the share of splits at least as far from 1/2 (exact), or
        ``(1 + that count) / (1 + splits)`` for random splits; ``method`` is
        ``"exact"`` or ``"permutation"``.
    """
    if a.size == 0 or b.size == 0:
        raise ValueError("both cell types need at least one finished draw")
    if a.maximize != b.maximize:
        raise ValueError("both cell types must share one direction")
    if n < 1:
        raise ValueError("n must be at least 1")
    pooled = np.concatenate([a.ranked(), b.ranked()])  # mirrored; failed are -inf
    order = np.argsort(pooled, kind="stable")
    values = pooled[order]
    ends = np.flatnonzero(np.append(values[1:] != values[:-1], True))  # tie-group ends
    observed_labels = np.zeros((1, pooled.size), dtype=bool)
    observed_labels[0, : a.size] = True
    observed = float(_statistic(observed_labels[:, order], ends, n)[0])
    labels, exact = _splits(pooled.size, a.size, seed)
    extreme = 0
    for start in range(0, len(labels), _BLOCK):
        stats = _statistic(labels[start : start + _BLOCK], ends, n)
        extreme += int(np.sum(np.abs(stats - 0.5) >= abs(observed - 0.5) - 1e-12))
    if exact:
        return RankTest(observed, min(1.0, extreme / len(labels)), "exact")
    return RankTest(observed, (1 + extreme) / (1 + len(labels)), "permutation")


def comparison_test(a: Draws, b: Draws, n: int, *, seed: int = 0) -> RankTest:
    """The test the report uses for a pair: :func:`best_of_n_test` up to
    :data:`MAX_POOLED` pooled draws, else the censored rank test of single draws (Gehan;
    its tie-corrected normal approximation)."""
    if a.size + b.size <= MAX_POOLED:
        return best_of_n_test(a, b, n, seed=seed)
    return censored_rank_test(a, b)
