"""Hyperparameter importance for the comparison report: which hyperparameters matter, and
can this study tell?

Estimator (:mod:`.importance_stats`): a binned functional ANOVA of the objective's ranks
over the completed trials; each parameter's *effect* is the share of their variance its
main effect explains, adjusted for its groups, and its *share* is its effect over the sum
of effects. Conditional parameters (``lstm.forget_bias``) count where they are active.
Overall, ``cell_type`` competes with all other parameters ("cell type against the
rest"); within a cell type it is left out. Above ``MAX_TRIALS`` completed trials a seeded
random subsample is used, and the report says so.

Uncertainty and a null: every share and effect has a percentile bootstrap interval over
trials (``BOOTSTRAP`` resamples), and every effect is tested against the effects of
``PERMUTATIONS`` random permutations of the objective values (no parameter matters
there), one-sided, Holm-corrected over the parameters at ``LEVEL``. Only a parameter the
test rejects is called important.

Why this estimator, and when a study can tell: ``benchmarks/importance.py`` simulates
studies shaped like the quick start in which the cell type, the learning rate or nothing
decides the objective, and runs this procedure with optuna's PED-ANOVA and fANOVA
evaluators and with this one (``benchmarks/IMPORTANCE.md``). This estimator finds the
deciding parameter in 80% of the simulated studies of both worlds from
:data:`MIN_TRIALS_TO_TELL` completed trials, PED-ANOVA (which looks at the top 10% of the
trials) only from 150 and fANOVA from 60 (no size between was run), and all three call a
parameter important in at most 5% of the studies in which none matters; fANOVA costs
0.2-2 s per evaluation here, thousands of times this estimator's, too slow for a
permutation null in a report rebuilt after every trial. Below that size the section says
it cannot tell yet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial

from cellsearch.search.report import importance_stats as istats
from cellsearch.search.report.formatting import percent
from cellsearch.search.report.model_importance import (
    CellTypeImportance,
    Importances,
    ParamImportance,
)

MAX_TRIALS = 2000
MIN_TRIALS = 10
LEVEL = 0.05
BOOTSTRAP = 200
PERMUTATIONS = 199
MIN_TRIALS_TO_TELL = 42
"""Completed trials from which the test finds a deciding parameter in at least 80% of the
simulated studies of ``benchmarks/importance.py`` (the cell type or the learning rate
deciding half the objective's variance)."""
METHOD = (
    "binned functional ANOVA of the objective's ranks (main effects, adjusted for their "
    f"groups); {BOOTSTRAP} bootstrap resamples of the trials; {PERMUTATIONS} permutations of "
    f"the objective values, Holm-corrected over the parameters at {LEVEL}"
)


def _subsample(trials: Sequence[FrozenTrial], seed: int) -> tuple[list[FrozenTrial], bool]:
    if len(trials) <= MAX_TRIALS:
        return list(trials), False
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(trials), size=MAX_TRIALS, replace=False))
    return [trials[i] for i in keep], True


def _interval(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{percent(low)}, {percent(high)}]"


def importance_verdict(params: Sequence[ParamImportance], n_trials: int) -> str:
    """One sentence: which parameters matter, or that none stands out, or that the study is
    too small to tell."""
    called = [p for p in params if p.important]
    small = n_trials < MIN_TRIALS_TO_TELL
    if called:
        found = "; ".join(
            f"{p.name} explains {percent(p.effect)}{_interval(p.effect_low, p.effect_high)} "
            f"of the variance of the objective's ranks (noise alone: up to "
            f"{percent(p.null_effect)})"
            for p in called
        )
        more = (
            f" With {n_trials} completed trials others may matter too and go unseen."
            if small
            else ""
        )
        return f"Important: {found}.{more}"
    if small:
        return (
            f"Cannot tell yet which hyperparameters matter: with {n_trials} completed trials "
            "no effect stands out from noise, and at this size the test finds a parameter "
            "that decides the objective in fewer than 80% of simulated studies; it needs "
            f"about {MIN_TRIALS_TO_TELL}."
        )
    return (
        f"No hyperparameter stands out from noise among {n_trials} completed trials: every "
        "effect is within what permuted objective values give."
    )


def param_importances(
    trials: Sequence[FrozenTrial],
    *,
    maximize: bool,
    seed: int,
    exclude: tuple[str, ...] = (),
) -> Importances | None:
    """Importances of the completed ``trials``, with intervals and tests.

    Args:
        trials: COMPLETE trials with finite values.
        maximize: Direction of the objective (the effects, of ranks' variance, do not
            depend on it; kept for the callers' symmetry).
        seed: Seed of the subsample drawn above ``MAX_TRIALS`` trials and of the
            replicates.
        exclude: Parameter names to leave out.

    Returns:
        The importances (largest share first) with their tests and verdict; or None with
        fewer than ``MIN_TRIALS`` trials or no varying parameter. Parameters that never
        varied (for instance ``cell_type`` in a one-cell study) are left out: they cannot
        matter.
    """
    del maximize  # ranks' variance is the same either way
    if len(trials) < MIN_TRIALS:
        return None
    used, subsampled = _subsample(trials, seed)
    names = _varying_params(used, exclude)
    if not names:
        return None
    y = istats.scaled_ranks(np.array([float(t.value or 0.0) for t in used]))
    design = istats.design_of([t.params for t in used], names)
    rng = np.random.default_rng([seed, len(used), len(names)])
    observed = istats.effects(design, y)[0]
    boot = istats.bootstrap(design, y, replicates=BOOTSTRAP, rng=rng)
    tested = istats.calls(
        observed, istats.permutation_null(design, y, replicates=PERMUTATIONS, rng=rng), LEVEL
    )
    share = istats.shares(observed[None, :])[0]
    boot_share = istats.shares(boot)
    q = [100 * LEVEL / 2, 100 * (1 - LEVEL / 2)]
    e_low, e_high = np.percentile(boot, q, axis=0)
    s_low, s_high = np.percentile(boot_share, q, axis=0)
    params = [
        ParamImportance(
            name=name, share=_clean(share[j]), share_low=_clean(s_low[j]),
            share_high=_clean(s_high[j]), effect=_clean(observed[j]),
            effect_low=_clean(e_low[j]), effect_high=_clean(e_high[j]),
            null_effect=_clean(tested.null_high[j]), p_value=_clean(tested.p_value[j]),
            p_adjusted=_clean(tested.p_adjusted[j]), important=bool(tested.important[j]),
        )
        for j, name in enumerate(names)
    ]  # fmt: skip
    params.sort(key=lambda p: (-p.share, p.name))
    return Importances(
        importances={p.name: p.share for p in params},
        params=params,
        n_trials=len(used),
        subsampled=subsampled,
        important=[p.name for p in params if p.important],
        can_tell=len(used) >= MIN_TRIALS_TO_TELL,
        verdict=importance_verdict(params, len(used)),
    )


def _clean(value: Any) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _varying_params(trials: Sequence[FrozenTrial], exclude: tuple[str, ...]) -> list[str]:
    """Parameters that take at least two distinct values among ``trials``."""
    seen: dict[str, set[Any]] = {}
    for trial in trials:
        for name, value in trial.params.items():
            if name not in exclude:
                seen.setdefault(name, set()).add(value)
    return sorted(name for name, values in seen.items() if len(values) > 1)


def cell_type_rank(overall: Importances | None) -> CellTypeImportance | None:
    """Share, interval, rank (1 = most important) and call of ``cell_type``."""
    if overall is None or "cell_type" not in overall.importances:
        return None
    names = list(overall.importances)
    entry = overall.params[names.index("cell_type")]
    return CellTypeImportance(
        share=entry.share,
        share_low=entry.share_low,
        share_high=entry.share_high,
        rank=names.index("cell_type") + 1,
        of=len(names),
        important=entry.important,
    )
