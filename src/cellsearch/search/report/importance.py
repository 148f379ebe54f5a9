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

import copy
import logging
import math
import warnings
from collections.abc import Container, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

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
    study = _TrialsStudy(used, maximize)
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


class _TrialsStudy(optuna.Study):
    """A study whose trials are a given list, for optuna's importance evaluators.

    Its storage is an empty in-memory study that gives the direction; ``get_trials``
    (the public method the evaluators read trials through) serves shallow copies of
    ``trials``, numbered apart (the evaluator tells trials apart by their ids).
    Copying thousands of trials into an in-memory storage instead (``add_trials``
    deep-copies each one) cost several times the evaluation itself: about 0.3 s per
    2,000 trials, six times per report.
    """

    def __init__(self, trials: Sequence[FrozenTrial], maximize: bool) -> None:
        storage = optuna.storages.InMemoryStorage()
        direction = StudyDirection.MAXIMIZE if maximize else StudyDirection.MINIMIZE
        logger = logging.getLogger("optuna.storages._in_memory")  # logs "A new study created"
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            study_id = storage.create_new_study(directions=[direction], study_name="importance")
        finally:
            logger.setLevel(level)
        super().__init__(study_name=storage.get_study_name_from_id(study_id), storage=storage)
        self._given = []
        for index, trial in enumerate(trials):  # the evaluator tells trials apart by id
            light = copy.copy(trial)
            light._trial_id = index
            self._given.append(light)

    def get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        chosen = [t for t in self._given if states is None or t.state in states]
        return copy.deepcopy(chosen) if deepcopy else chosen


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
