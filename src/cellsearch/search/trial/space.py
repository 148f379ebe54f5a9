"""Turn a spec's search space into Optuna suggestions, one trial at a time."""

from __future__ import annotations

from typing import cast

import optuna

from cellsearch.models import CELLS, solve_hidden_size
from cellsearch.search.record import CELL_PARAM
from cellsearch.search.study.spec import (
    FloatParam,
    FloatRange,
    IntParam,
    IntRange,
    StudySpec,
    choices,
)
from cellsearch.search.trial_config import ModelConfig, OptimizerName, TrainConfig, TrialConfig


def suggest_int(trial: optuna.Trial, name: str, param: IntParam) -> int:
    """Suggest an integer; a scalar is fixed and not recorded as a parameter."""
    if isinstance(param, IntRange):
        return trial.suggest_int(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return int(trial.suggest_categorical(name, param))
    return param


def suggest_float(trial: optuna.Trial, name: str, param: FloatParam) -> float:
    """Suggest a float; a scalar is fixed and not recorded as a parameter."""
    if isinstance(param, FloatRange):
        return trial.suggest_float(name, param.low, param.high, log=param.log)
    if isinstance(param, list):
        return float(trial.suggest_categorical(name, param))
    return float(param)


def suggest_config(
    trial: optuna.Trial, spec: StudySpec, *, input_size: int, output_size: int, seed: int
) -> TrialConfig:
    """Sample one configuration from ``spec.space`` for ``trial``, trained with ``seed``.

    The cell type is always recorded as the categorical parameter ``cell_type`` (even
    when only one is searched) so that every trial can be grouped by cell. Options of
    a cell are named ``<cell>.<option>`` and sampled only when that cell is chosen.
    With ``param_budget`` the hidden size is solved from the cell's parameter formula.
    """
    space = spec.space
    cell = str(trial.suggest_categorical(CELL_PARAM, spec.cell_types))
    num_layers = suggest_int(trial, "num_layers", space.num_layers)
    if spec.param_budget is not None:
        hidden = solve_hidden_size(cell, input_size, num_layers, output_size, spec.param_budget)
    else:
        hidden = suggest_int(trial, "hidden_size", space.hidden_size)
    options = {
        name: suggest_float(trial, f"{cell}.{name}", param)
        for name, param in space.cell_options.get(cell, {}).items()
    }
    for option in CELLS[cell].options:  # defaults of options the space leaves out
        if option.name not in options and option.default is not None:
            options[option.name] = option.default
    learning_rate = suggest_float(trial, "learning_rate", space.learning_rate)
    batch_size = suggest_int(trial, "batch_size", space.batch_size)
    dropout = suggest_float(trial, "dropout", space.dropout)
    optimizer = trial.suggest_categorical("optimizer", choices(space.optimizer))
    weight_decay = suggest_float(trial, "weight_decay", space.weight_decay)
    grad_clip = suggest_float(trial, "grad_clip", space.grad_clip)
    train = TrainConfig(
        learning_rate=learning_rate,
        batch_size=batch_size,
        max_epochs=spec.budget.max_epochs,
        optimizer=cast(OptimizerName, optimizer),  # one of OPTIMIZERS: the spec checked
        weight_decay=weight_decay,
        grad_clip=grad_clip or None,  # 0 disables clipping
        max_seconds=spec.budget.max_trial_seconds,
        seed=seed,
        precision=spec.precision,
    )
    model = ModelConfig(cell, hidden, num_layers, dropout, options)
    return TrialConfig(model, train)
