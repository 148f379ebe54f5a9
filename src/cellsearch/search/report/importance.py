"""Hyperparameter importance for the comparison report.

Uses optuna's :class:`~optuna.importance.PedAnovaImportanceEvaluator`, which
handles conditional parameters (such as ``lstm.forget_bias``, present only in
LSTM trials) by partitioning trials into regimes where the parameter is active.
Importances are normalised to sum to 1 and describe which parameters matter to
reach the top 10% of completed trials. Overall, ``cell_type`` competes with all
other parameters ("cell type against the rest"); within a cell type it is left
out. Above ``MAX_TRIALS`` completed trials a seeded random subsample is used, and
the report says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.trial import FrozenTrial

# a study serving given trials to the evaluators (Optuna internals: the adapter's)
from cellsearch.search.optuna_adapter import TrialsStudy as _TrialsStudy
from cellsearch.search.report.model import CellTypeImportance, Importances

MAX_TRIALS = 2000
MIN_TRIALS = 10
METHOD = "optuna PedAnovaImportanceEvaluator (top 10% of completed trials), normalised"


def _subsample(trials: Sequence[FrozenTrial], seed: int) -> tuple[list[FrozenTrial], bool]:
    if len(trials) <= MAX_TRIALS:
        return list(trials), False
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(trials), size=MAX_TRIALS, replace=False))
    return [trials[i] for i in keep], True


def param_importances(
    trials: Sequence[FrozenTrial],
    *,
    maximize: bool,
    seed: int,
    exclude: tuple[str, ...] = (),
) -> Importances | None:
    """Normalised PED-ANOVA importances of the completed ``trials``.

    Args:
        trials: COMPLETE trials with finite values.
        maximize: Direction of the objective.
        seed: Seed of the subsample drawn above ``MAX_TRIALS`` trials.
        exclude: Parameter names to leave out.

    Returns:
        The importances (``{name: share}`` by decreasing share), the number of trials
        used and whether they were subsampled; or None with fewer than ``MIN_TRIALS`` trials
        or no varying parameter. Parameters that never varied (for instance
        ``cell_type`` in a one-cell study) are left out: they cannot matter.
    """
    if len(trials) < MIN_TRIALS:
        return None
    used, subsampled = _subsample(trials, seed)
    names = _varying_params(used, exclude)
    if not names:
        return None
    study = _TrialsStudy(used, maximize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shares = get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), params=names, normalize=True
        )
    clean = {k: float(v) for k, v in shares.items() if math.isfinite(v)}
    ordered = dict(sorted(clean.items(), key=lambda kv: (-kv[1], kv[0])))
    return Importances(importances=ordered, n_trials=len(used), subsampled=subsampled)


def _varying_params(trials: Sequence[FrozenTrial], exclude: tuple[str, ...]) -> list[str]:
    """Parameters that take at least two distinct values among ``trials``."""
    seen: dict[str, set[Any]] = {}
    for trial in trials:
        for name, value in trial.params.items():
            if name not in exclude:
                seen.setdefault(name, set()).add(value)
    return sorted(name for name, values in seen.items() if len(values) > 1)


def cell_type_rank(overall: Importances | None) -> CellTypeImportance | None:
    """Share and rank (1 = most important) of ``cell_type`` among all parameters."""
    if overall is None or "cell_type" not in overall.importances:
        return None
    names = list(overall.importances)
    return CellTypeImportance(
        share=overall.importances["cell_type"], rank=names.index("cell_type") + 1, of=len(names)
    )
