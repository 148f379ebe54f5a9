"""Prefilling a study with finished trials, for the scale-out benchmark's large studies.

The trials are what a worker would have left: each carries its deal (its claim index)
and the deal's cell type, sampled parameters, a curve of per-epoch values, a value, and
the state COMPLETE (a few PRUNED). They are written through Optuna's public
``add_trials``, in batches.
"""

from __future__ import annotations

import math
import random
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from cellsearch.search.record import Attr
from cellsearch.search.study.sampling import dealt_cell

BATCH = 500
PRUNED, COMPLETE = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE


def add_finished(storage: optuna.storages.BaseStorage, spec: Any, n: int) -> None:
    """Add ``n`` finished trials (deals ``0 .. n-1``) to ``spec``'s study."""
    study = optuna.load_study(study_name=spec.name, storage=storage)
    rng = random.Random(0)
    space = spec.space
    hidden, lr = space.hidden_size, space.learning_rate
    distributions = {
        "cell_type": CategoricalDistribution(list(spec.cell_types)),
        "hidden_size": IntDistribution(hidden.low, hidden.high, log=True),
        "learning_rate": FloatDistribution(lr.low, lr.high, log=True),
    }
    epochs = spec.budget.max_epochs
    for start in range(0, n, BATCH):
        trials = []
        for deal in range(start, min(n, start + BATCH)):
            cell = dealt_cell(spec, deal) or "gru"
            params: dict[str, Any] = {
                "cell_type": cell,
                "hidden_size": rng.randint(hidden.low, hidden.high),
                "learning_rate": math.exp(rng.uniform(math.log(lr.low), math.log(lr.high))),
            }
            floor = 0.05 + abs(math.log10(params["learning_rate"]) + 2.5) * 0.1
            curve = {e: floor + 0.5 * math.exp(-e / 2) for e in range(1, epochs + 1)}
            pruned = rng.random() < 0.1
            if pruned:
                curve = {e: v for e, v in curve.items() if e <= 2}
            trials.append(
                optuna.trial.create_trial(
                    state=PRUNED if pruned else COMPLETE,
                    value=None if pruned else min(curve.values()),
                    params=params,
                    distributions=distributions,
                    user_attrs={Attr.DEAL: deal, Attr.CELL_TYPE: cell},
                    intermediate_values=curve,
                )
            )
        study.add_trials(trials)
