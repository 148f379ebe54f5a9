"""Hyperparameter importance with its uncertainty and a null reference, vectorised.

The estimator (:func:`effects`) is a first-order functional ANOVA on a binned model:
each hyperparameter's *effect* is the share of the variance of the objective's ranks that
its main effect explains, adjusted for the groups it is cut into (epsilon squared,
``(SSB - (g - 1) SSW / (n - g)) / SST``, clipped at 0):

- the objective is replaced by its ranks (scaled to 0..1), so one diverging trial cannot
  decide the answer and minimised or maximised objectives read alike;
- a categorical parameter's groups are its values; a numeric one is cut into ``g``
  groups of about equal size (3 to :data:`MAX_BINS`, about one per 8 trials), by rank,
  so equal values share a group and the log scale does not matter;
- a conditional parameter (``lstm.forget_bias``) is grouped among the trials where it is
  active; the variance it explains is a share of all trials' variance.

Every replicate is the same few matrix products, so the report affords many: a percentile
bootstrap over trials (:func:`bootstrap`) for intervals, and the same effects under
permuted objective values (:func:`permutation_null`) for a null reference and a p-value
per parameter, Holm-corrected over the parameters (:func:`calls`). Under permutation no
parameter matters, so a parameter is called important only when its effect clears what
noise gives at that study's size and with that parameter's groups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from cellsearch.search.report.stats import holm

MAX_BINS = 6
"""The most groups a numeric parameter is cut into."""
TRIALS_PER_BIN = 8
"""About this many trials per group of a numeric parameter (at least 3 groups)."""

FloatArray = np.ndarray


@dataclass(frozen=True)
class Design:
    """Which group each trial falls in, per parameter.

    Attributes:
        names: The parameters, in order.
        groups: One ``(n,)`` int array per parameter: the trial's group, -1 where the
            parameter is not active in the trial.
        sizes: How many groups each parameter has.
    """

    names: list[str]
    groups: list[np.ndarray]
    sizes: list[int]

    @property
    def n(self) -> int:
        """The number of trials."""
        return len(self.groups[0]) if self.groups else 0


def _numeric_groups(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Cut numeric values into about equal groups by rank (equal values stay together)."""
    distinct = np.unique(values).size
    bins = int(min(MAX_BINS, max(3, values.size // TRIALS_PER_BIN), distinct))
    ranks = sps.rankdata(values, method="average")  # 1..n, ties share their average
    raw = np.floor((ranks - 0.5) / values.size * bins).astype(np.int64)
    _, dense = np.unique(np.clip(raw, 0, bins - 1), return_inverse=True)
    return dense.astype(np.int64), int(dense.max()) + 1


def design_of(params: Sequence[Mapping[str, Any]], names: Sequence[str]) -> Design:
    """The :class:`Design` of trials with the given ``params`` (one mapping per trial).

    A parameter whose values are all numbers (and not booleans) is numeric; any other is
    categorical.
    """
    groups, sizes = [], []
    n = len(params)
    for name in names:
        present = np.array([name in p for p in params], dtype=bool)
        values = [p[name] for p in params if name in p]
        out = np.full(n, -1, dtype=np.int64)
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            found, size = _numeric_groups(np.asarray(values, dtype=np.float64))
        else:
            labels = [repr(v) for v in values]
            _, inverse = np.unique(np.array(labels, dtype=object), return_inverse=True)
            found, size = inverse.astype(np.int64), int(inverse.max()) + 1 if labels else 0
        out[present] = found
        groups.append(out)
        sizes.append(size)
    return Design(list(names), groups, sizes)


def scaled_ranks(values: np.ndarray) -> np.ndarray:
    """The values' ranks scaled to 0..1 (ties share their average rank)."""
    if values.size < 2:
        return np.zeros_like(values, dtype=np.float64)
    return (sps.rankdata(values, method="average") - 1.0) / (values.size - 1.0)


def effects(design: Design, y: FloatArray, weights: FloatArray | None = None) -> FloatArray:
    """Each parameter's adjusted effect for each replicate.

    Args:
        design: The trials' groups.
        y: ``(R, n)`` values (ranks) per replicate.
        weights: ``(R, n)`` non-negative weights (a bootstrap's counts), or None for 1.

    Returns:
        ``(R, m)`` effects in ``[0, 1]``: the share of the variance of ``y`` each
        parameter's main effect explains beyond what its groups explain by chance.
    """
    y = np.atleast_2d(np.asarray(y, dtype=np.float64))  # (R, n)
    w = np.ones_like(y) if weights is None else np.atleast_2d(weights).astype(np.float64)
    total_w = w.sum(axis=1)  # (R,)
    wy = w * y
    wyy = wy * y
    mean = wy.sum(axis=1) / np.maximum(total_w, 1e-300)
    sst = wyy.sum(axis=1) - total_w * mean**2  # (R,)
    out = np.zeros((y.shape[0], len(design.names)))
    for j, (group, size) in enumerate(zip(design.groups, design.sizes, strict=True)):
        active = group >= 0
        if size < 2 or active.sum() < 3:
            continue
        onehot = np.zeros((design.n, size))  # (n, g)
        onehot[np.flatnonzero(active), group[active]] = 1.0
        wg = w @ onehot  # (R, g)
        sg = wy @ onehot
        ssg = wyy @ onehot
        n_active = wg.sum(axis=1)
        mean_a = sg.sum(axis=1) / np.maximum(n_active, 1e-300)
        filled = wg > 0
        group_mean = np.where(filled, sg / np.where(filled, wg, 1.0), 0.0)
        ssb = (wg * (group_mean - mean_a[:, None]) ** 2).sum(axis=1)
        ssw = (ssg - wg * group_mean**2).sum(axis=1)
        g = filled.sum(axis=1)  # groups seen in each replicate
        dof = np.maximum(n_active - g, 1.0)
        positive = sst > 1e-12
        adjusted = (ssb - (g - 1) * np.maximum(ssw, 0.0) / dof) / np.where(positive, sst, 1.0)
        out[:, j] = np.clip(np.where(positive, adjusted, 0.0), 0.0, 1.0)
    return out


def shares(effect: FloatArray) -> FloatArray:
    """Effects normalised to sum to 1 per replicate (0 everywhere where all are 0)."""
    total = effect.sum(axis=-1, keepdims=True)
    return np.where(total > 0, effect / np.where(total > 0, total, 1.0), 0.0)


def bootstrap(
    design: Design, y: FloatArray, *, replicates: int, rng: np.random.Generator
) -> FloatArray:
    """``(B, m)`` effects on ``replicates`` resamples of the trials (with replacement)."""
    n = design.n
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(replicates)])
    return effects(design, np.broadcast_to(y, counts.shape), counts.astype(np.float64))


def permutation_null(
    design: Design, y: FloatArray, *, replicates: int, rng: np.random.Generator
) -> FloatArray:
    """``(P, m)`` effects under ``replicates`` random permutations of the values."""
    permuted = np.stack([rng.permutation(y) for _ in range(replicates)])
    return effects(design, permuted)


@dataclass(frozen=True)
class Calls:
    """The permutation test of each parameter's effect.

    Attributes:
        p_value: ``(m,)`` one-sided permutation p-values, ``(1 + #{null >= observed}) /
            (P + 1)``.
        p_adjusted: Holm-adjusted over the parameters.
        important: Whether Holm rejects at the level.
        null_high: ``(m,)`` the null's ``1 - level`` quantile of each effect.
    """

    p_value: FloatArray
    p_adjusted: FloatArray
    important: np.ndarray
    null_high: FloatArray


def calls(observed: FloatArray, null: FloatArray, level: float) -> Calls:
    """Test each parameter's ``observed`` effect ``(m,)`` against its ``null`` ``(P, m)``."""
    exceed = (null >= observed[None, :] - 1e-12).sum(axis=0)
    p = (1.0 + exceed) / (1.0 + null.shape[0])
    adjusted, reject = holm(p.tolist(), level)
    important = np.asarray(reject, dtype=bool) & (observed > 0)
    high = np.quantile(null, 1.0 - level, axis=0) if null.size else np.zeros_like(observed)
    return Calls(p, np.asarray(adjusted, dtype=np.float64), important, high)
