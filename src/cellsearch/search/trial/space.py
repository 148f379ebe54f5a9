"""Turn a spec's search space into Optuna suggestions, one trial at a time.

Each entry of the spec's table of hyperparameters is suggested as its kind says, in the
order of the entries' draws (:mod:`cellsearch.search.study.hyperparameters`); the cell
type comes first, the chosen cell's options at their place among the draws.
"""

from __future__ import annotations

from typing import Any, cast

import optuna

from cellsearch.models import CELLS, solve_hidden_size
from cellsearch.search.record import CELL_PARAM
from cellsearch.search.study.hyperparameters import (
    CELL_OPTIONS_DRAW,
    Hyperparameter,
    draw_order,
    in_use,
)
from cellsearch.search.study.param_forms import (
    ChoiceParam,
    FloatParam,
    FloatRange,
    IntParam,
    IntRange,
    Param,
    choices,
)
from cellsearch.search.study.spec import StudySpec
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


def suggest(trial: optuna.Trial, entry: Hyperparameter, param: Param) -> Any:
    """Suggest the value of a table entry as its kind says (see
    :data:`~cellsearch.search.study.hyperparameters.Kind`)."""
    if entry.kind == "choice":
        return trial.suggest_categorical(entry.name, choices(cast(ChoiceParam, param)))
    if entry.kind == "int":
        return suggest_int(trial, entry.name, cast(IntParam, param))
    return suggest_float(trial, entry.name, cast(FloatParam, param))


def suggest_space(
    trial: optuna.Trial, spec: StudySpec, cell: str
) -> tuple[dict[str, Any], dict[str, float]]:
    """Suggest each table entry ``spec`` uses and the options of ``cell``, in the order of
    their draws (a seeded study draws the same values only while that order holds).

    Returns:
        The entries' values by name, and the cell's options (their defaults included).
    """
    values: dict[str, Any] = {}
    options: dict[str, float] | None = None
    for entry in draw_order(in_use(spec.space.table, spec.param_budget)):
        if options is None and entry.draw > CELL_OPTIONS_DRAW:
            options = _suggest_options(trial, spec, cell)
        values[entry.name] = suggest(trial, entry, spec.space.param(entry.name))
    if options is None:
        options = _suggest_options(trial, spec, cell)
    return values, options


def _suggest_options(trial: optuna.Trial, spec: StudySpec, cell: str) -> dict[str, float]:
    """The options of ``cell``: those the space searches, then the defaults of the rest."""
    options = {
        name: suggest_float(trial, f"{cell}.{name}", param)
        for name, param in spec.space.cell_options.get(cell, {}).items()
    }
    for option in CELLS[cell].options:  # defaults of options the space leaves out
        if option.name not in options and option.default is not None:
            options[option.name] = option.default
    return options


def suggest_config(
    trial: optuna.Trial, spec: StudySpec, *, input_size: int, output_size: int, seed: int
) -> TrialConfig:
    """Sample one configuration from ``spec.space`` for ``trial``, trained with ``seed``.

    The cell type is always recorded as the categorical parameter ``cell_type`` (even
    when only one is searched) so that every trial can be grouped by cell. Options of
    a cell are named ``<cell>.<option>`` and sampled only when that cell is chosen.
    With ``param_budget`` the hidden size is solved from the cell's parameter formula.
    Every entry of the spec's table is suggested (:func:`suggest_space`); the trial
    trains with those the trainer knows.
    """
    cell = str(trial.suggest_categorical(CELL_PARAM, spec.cell_types))
    values, options = suggest_space(trial, spec, cell)
    num_layers = values["num_layers"]
    hidden = values.get("hidden_size")
    if hidden is None:  # the parameter budget takes its place
        assert spec.param_budget is not None
        hidden = solve_hidden_size(cell, input_size, num_layers, output_size, spec.param_budget)
    train = TrainConfig(
        learning_rate=values["learning_rate"],
        batch_size=values["batch_size"],
        max_epochs=spec.budget.max_epochs,
        optimizer=cast(OptimizerName, values["optimizer"]),  # one of OPTIMIZERS: the spec checked
        weight_decay=values["weight_decay"],
        grad_clip=values["grad_clip"] or None,  # 0 disables clipping
        max_seconds=spec.budget.max_trial_seconds,
        seed=seed,
        precision=spec.precision,
    )
    model = ModelConfig(cell, hidden, num_layers, values["dropout"], options)
    return TrialConfig(model, train)
