"""The report's details beside its statistics: what a person reads off a study.

- :func:`fixed_params`: the hyperparameters a spec fixes (the same in every trial).
- :func:`hyperparameters`: every hyperparameter of one trial, fixed ones included.
- :func:`trial_counts`: trials by state, counted as the service counts them (a trial
  interrupted by a pause or a cancel, or failed as stale, is ``requeued``, not ``failed``).
- :func:`beats_baseline`: how many completed trials beat the task's trivial baseline.
- :func:`trial_table`: one compact row per trial, column by column (the report page's
  sortable table and parallel-coordinates plot).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import CELL_PARAM, Attr, cell_of, failure_kind, is_counted
from cellsearch.search.study.spec import FloatRange, IntRange, StudySpec

_SPACE_FIELDS = (
    "hidden_size", "num_layers", "learning_rate", "batch_size", "dropout", "optimizer",
    "weight_decay", "grad_clip",
)  # fmt: skip
_DIGITS = 6  # significant digits of the floats in the trial table


def _fixed(value: Any) -> tuple[bool, Any]:
    """Whether a space entry takes one value only, and that value."""
    if isinstance(value, IntRange | FloatRange):
        return value.low == value.high, value.low
    if isinstance(value, list):
        return len(value) == 1, value[0] if value else None
    return True, value


def fixed_params(spec: StudySpec) -> dict[str, Any]:
    """The hyperparameters ``spec`` fixes, by the name a sampled one would have.

    Per-cell options are named ``<cell>.<option>``. The hidden size is left out when a
    parameter budget solves it per cell (each trial records the size it used).
    """
    space = spec.space
    out: dict[str, Any] = {}
    for name in _SPACE_FIELDS:
        if name == "hidden_size" and spec.param_budget is not None:
            continue
        fixed, value = _fixed(getattr(space, name))
        if fixed:
            out[name] = value
    for cell, options in space.cell_options.items():
        for option, param in options.items():
            fixed, value = _fixed(param)
            if fixed:
                out[f"{cell}.{option}"] = value
    return out


def hyperparameters(trial: FrozenTrial, fixed: dict[str, Any]) -> dict[str, Any]:
    """Every hyperparameter of ``trial``: sampled, fixed by the spec, or derived.

    The derived ones come from the trial's record: the hidden size and layer count it
    was built with, and the options of its cell (defaults included).
    """
    cell = cell_of(trial)
    attrs = trial.user_attrs
    out: dict[str, Any] = {CELL_PARAM: cell, **trial.params}  # sampled ones first
    for attr in (Attr.HIDDEN_SIZE, Attr.NUM_LAYERS):
        if attrs.get(attr) is not None:
            out.setdefault(str(attr), attrs[attr])
    for option, value in (attrs.get(Attr.CELL_OPTIONS) or {}).items():
        out.setdefault(f"{cell}.{option}", value)
    for name, value in fixed.items():
        owner, dot, _ = name.partition(".")
        if not dot or owner == cell:
            out.setdefault(name, value)
    return out


def trial_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Trials by state with the service's keys (``GET /studies/{name}``'s ``counts``).

    ``failed`` are model outcomes (diverged, error) and count toward the budget;
    ``requeued`` were interrupted (pause, cancel, a stopped worker) or stale and do not;
    ``finished`` = complete + pruned + failed.
    """
    states = Counter(t.state for t in trials)
    failed = sum(t.state == TrialState.FAIL and is_counted(t) for t in trials)
    counts = {
        "complete": states[TrialState.COMPLETE],
        "pruned": states[TrialState.PRUNED],
        "failed": failed,
        "requeued": states[TrialState.FAIL] - failed,
        "running": states[TrialState.RUNNING],
        "waiting": states[TrialState.WAITING],
    }
    counts["finished"] = counts["complete"] + counts["pruned"] + failed
    return counts


def beats_baseline(
    values: Sequence[float], baseline: float | None, *, maximize: bool
) -> int | None:
    """How many of ``values`` are strictly better than ``baseline`` (None without one)."""
    if baseline is None:
        return None
    if maximize:
        return sum(v > baseline for v in values)
    return sum(v < baseline for v in values)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{_DIGITS}g}")
    return value


def _state(trial: FrozenTrial) -> str:
    if trial.state == TrialState.FAIL:
        kind = failure_kind(trial)
        return "failed" if is_counted(trial) else f"requeued ({kind})"
    return trial.state.name.lower()


def _epochs(trial: FrozenTrial) -> int | None:
    epochs = trial.user_attrs.get(Attr.EPOCHS_RUN)
    if epochs is None and trial.intermediate_values:
        return len(trial.intermediate_values)  # a running trial: the epochs reported so far
    return int(epochs) if epochs is not None else None


def _varying(trial: FrozenTrial) -> dict[str, Any]:
    """The hyperparameters that differ between trials (the cell type apart)."""
    out: dict[str, Any] = {}
    size = trial.user_attrs.get(Attr.HIDDEN_SIZE)
    if size is not None and "hidden_size" not in trial.params:
        out["hidden_size"] = size  # solved from a parameter budget
    out.update((k, v) for k, v in trial.params.items() if k != CELL_PARAM)
    return out


def trial_table(trials: Sequence[FrozenTrial]) -> dict[str, Any]:
    """One row per trial, stored column by column (compact for 10,000 trials).

    Returns:
        ``{"number", "cell_type", "state", "value", "epochs", "seconds", "param_count"}``
        lists of equal length, and ``params``: each searched hyperparameter's column
        (None where a trial has no such parameter, e.g. another cell's option). ``state``
        is ``complete``, ``pruned``, ``failed`` (a model outcome: diverged or error),
        ``requeued (interrupted|stale)``, ``running`` or ``waiting``; ``value`` is the
        objective (for a pruned trial, its value at pruning); floats keep 6 digits.
    """
    ordered = sorted(trials, key=lambda t: t.number)
    varying = [_varying(t) for t in ordered]
    names = sorted({name for row in varying for name in row})
    return {
        "number": [t.number for t in ordered],
        "cell_type": [cell_of(t) for t in ordered],
        "state": [_state(t) for t in ordered],
        "value": [_round(t.value) if t.values else None for t in ordered],
        "epochs": [_epochs(t) for t in ordered],
        "seconds": [_round(t.user_attrs.get(Attr.SECONDS)) for t in ordered],
        "param_count": [t.user_attrs.get(Attr.PARAM_COUNT) for t in ordered],
        "params": {name: [_round(row.get(name)) for row in varying] for name in names},
    }
