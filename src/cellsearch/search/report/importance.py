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

import logging
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial

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
) -> dict[str, Any] | None:
    """Normalised PED-ANOVA importances of the completed ``trials``.

    Args:
        trials: COMPLETE trials with finite values.
        maximize: Direction of the objective.
        seed: Seed of the subsample drawn above ``MAX_TRIALS`` trials.
        exclude: Parameter names to leave out.

    Returns:
        ``{"importances": {name: share}, "n_trials": used, "subsampled": bool}``
        sorted by decreasing share, or None with fewer than ``MIN_TRIALS`` trials
        or no varying parameter. Parameters that never varied (for instance
        ``cell_type`` in a one-cell study) are left out: they cannot matter.
    """
    if len(trials) < MIN_TRIALS:
        return None
    used, subsampled = _subsample(trials, seed)
    names = _varying_params(used, exclude)
    if not names:
        return None
    study = _scratch_study(used, maximize)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shares = get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(), params=names, normalize=True
        )
    clean = {k: float(v) for k, v in shares.items() if math.isfinite(v)}
    ordered = dict(sorted(clean.items(), key=lambda kv: (-kv[1], kv[0])))
    return {"importances": ordered, "n_trials": len(used), "subsampled": subsampled}


def _varying_params(trials: Sequence[FrozenTrial], exclude: tuple[str, ...]) -> list[str]:
    """Parameters that take at least two distinct values among ``trials``."""
    seen: dict[str, set[Any]] = {}
    for trial in trials:
        for name, value in trial.params.items():
            if name not in exclude:
                seen.setdefault(name, set()).add(value)
    return sorted(name for name, values in seen.items() if len(values) > 1)


def _scratch_study(trials: Sequence[FrozenTrial], maximize: bool) -> optuna.Study:
    """An in-memory study holding light copies (value and params only) of ``trials``.

    The copies drop learning curves and attributes, which optuna would otherwise
    deep-copy on insertion. The study is built without ``create_study`` so that
    nothing is logged at INFO level.
    """
    storage = optuna.storages.InMemoryStorage()
    direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE
    logger = logging.getLogger("optuna.storages._in_memory")  # logs "A new study created"
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        study_id = storage.create_new_study(directions=[direction], study_name="importance")
    finally:
        logger.setLevel(level)
    study = optuna.Study(study_name=storage.get_study_name_from_id(study_id), storage=storage)
    study.add_trials(
        [
            optuna.trial.create_trial(value=t.value, params=t.params, distributions=t.distributions)
            for t in trials
        ]
    )
    return study


def cell_type_rank(overall: dict[str, Any] | None) -> dict[str, Any] | None:
    """Share and rank (1 = most important) of ``cell_type`` among all parameters."""
    if not overall or "cell_type" not in overall["importances"]:
        return None
    names = list(overall["importances"])
    return {
        "share": overall["importances"]["cell_type"],
        "rank": names.index("cell_type") + 1,
        "of": len(names),
    }
