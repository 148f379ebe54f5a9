"""Can the study's design detect a difference at all? Power helpers for the verdict.

The comparison tests each pair of cell types with
:func:`cellsearch.search.report.draw_stats.censored_rank_test` and corrects over the
``m`` pairs with Holm's method. Holm rejects anything only if the smallest
p-value is at most ``alpha / m``, so a design whose smallest *attainable*
p-value is above that cannot name a winner, however different the cells are.

- :func:`min_attainable_p`: the smallest two-sided p-value of the test with
  ``n_a`` against ``n_b`` draws (a perfect separation without ties).
- :func:`trials_needed`: the fewest draws per cell type for which a perfect
  separation can survive Holm's correction over ``m`` pairs.
- :func:`trials_for_power`: draws per cell type for 80% power at an observed
  effect (Noether 1987), never fewer than :func:`trials_needed`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from cellsearch.search.report.draw_stats import Draws, censored_rank_test

# trials_needed searches n = 1..MAX_TRIALS draws per cell type.
MAX_TRIALS = 10_000


def pairs(n_cells: int) -> int:
    """Number of pairwise tests between ``n_cells`` cell types."""
    return n_cells * (n_cells - 1) // 2


def min_attainable_p(n_a: int, n_b: int) -> float:
    """Smallest two-sided p-value the censored rank test can return for these sizes.

    It is reached when every draw of one group beats every draw of the other and
    no draws tie; it is computed by running the test on such data, so it follows
    the test's own choice of method. In the exact regime it equals
    ``2 / comb(n_a + n_b, n_a)`` (3 against 3: 0.1), since the observed split is
    the only one that extreme. Ties (for example failed draws) never lower it in
    that regime.

    Args:
        n_a: Draws of the first cell type, at least 1.
        n_b: Draws of the second, at least 1.
    """
    if n_a < 1 or n_b < 1:
        raise ValueError("both groups need at least one draw")
    high = Draws.of(np.arange(n_a, dtype=np.float64) + n_b)
    low = Draws.of(np.arange(n_b, dtype=np.float64))
    return censored_rank_test(high, low).p_value


def trials_needed(m_pairs: int, alpha: float = 0.05) -> int:
    """Fewest draws per cell type for which significance is attainable after Holm.

    The smallest ``n`` with ``min_attainable_p(n, n) <= alpha / m_pairs``: below
    it, no outcome of a balanced study can reject any pair (one pair: 4 draws per
    cell type at alpha 0.05; three cell types, three pairs: 5).

    Args:
        m_pairs: Number of pairwise tests in Holm's family, at least 1.
        alpha: Family-wise error rate, in (0, 1).

    Raises:
        ValueError: On invalid arguments, or if no ``n`` up to
            :data:`MAX_TRIALS` suffices.
    """
    if m_pairs < 1 or not 0.0 < alpha < 1.0:
        raise ValueError("m_pairs must be >= 1 and alpha in (0, 1)")
    target = alpha / m_pairs
    for n in range(1, MAX_TRIALS + 1):
        if min_attainable_p(n, n) <= target:
            return n
    raise ValueError(f"more than {MAX_TRIALS} trials per cell type would be needed")


def trials_for_power(
    effect: float, *, m_pairs: int = 1, alpha: float = 0.05, power: float = 0.8
) -> int | None:
    """Draws per cell type for the rank test to detect ``effect`` with ``power``.

    Noether's (1987) sample size for the Mann-Whitney test with equal groups:
    ``N = (z_{1-a/2} + z_{power})^2 / (3 (effect - 1/2)^2)`` draws in all, half per
    group, where ``effect`` is P(one draw of A beats one of B) and ``a`` is
    ``alpha / m_pairs`` (Bonferroni, which is what Holm requires of the pair with
    the smallest p-value). The result is rounded up and raised to at least
    :func:`trials_needed`. It is an approximation for continuous scores; many
    tied failed draws lower the test's power.

    Args:
        effect: Observed P(A beats B) for one draw each, in [0, 1].
        m_pairs: Number of pairwise tests in Holm's family.
        alpha: Family-wise error rate.
        power: Wanted probability of rejecting, in (0, 1).

    Returns:
        Draws per cell type, or None when ``effect`` is 1/2 (no difference to detect).
    """
    if not 0.0 <= effect <= 1.0 or not 0.0 < power < 1.0:
        raise ValueError("effect must be in [0, 1] and power in (0, 1)")
    floor = trials_needed(m_pairs, alpha)
    delta = abs(effect - 0.5)
    if delta == 0.0:
        return None
    z = float(sps.norm.ppf(1.0 - alpha / (2.0 * m_pairs)) + sps.norm.ppf(power))
    total = z**2 / (3.0 * delta**2)
    return max(floor, math.ceil(total / 2.0 - 1e-9))
