"""The report's details beside its statistics: what a person reads off a study.

- :func:`fixed_params`: the hyperparameters a spec fixes (the same in every trial).
- :func:`hyperparameters`: every hyperparameter of one trial, fixed ones included.
- :func:`trial_counts`: trials by state, counted as the service counts them (a trial
  interrupted by a pause or a cancel, or failed as stale, is ``requeued``, not ``failed``).
- :func:`trial_table`: one compact row per trial, column by column (the report page's
  sortable table and parallel-coordinates plot).
- :func:`allocation` (which cell type each trial used) and :func:`environment`
  (versions, devices, seeds).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

import cellsearch
from cellsearch.search.record import CELL_PARAM, Attr, cell_of, failure_kind, is_counted
from cellsearch.search.report.model import (
    Allocation,
    BootstrapInfo,
    Environment,
    TrialCounts,
    TrialTable,
)
from cellsearch.search.study.spec import FloatRange, IntRange, StudySpec

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
    for name, param in spec.space_params().items():
        fixed, value = _fixed(param)
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


def trial_counts(trials: Sequence[FrozenTrial]) -> TrialCounts:
    """Trials by state with the service's keys (``GET /studies/{name}``'s ``counts``).

    ``failed`` are model outcomes (diverged, error) and count toward the budget;
    ``requeued`` were interrupted (pause, cancel, a stopped worker) or stale and do not;
    ``finished`` = complete + pruned + failed.
    """
    states = Counter(t.state for t in trials)
    failed = sum(t.state == TrialState.FAIL and is_counted(t) for t in trials)
    return TrialCounts(
        complete=states[TrialState.COMPLETE],
        pruned=states[TrialState.PRUNED],
        failed=failed,
        requeued=states[TrialState.FAIL] - failed,
        running=states[TrialState.RUNNING],
        waiting=states[TrialState.WAITING],
        finished=states[TrialState.COMPLETE] + states[TrialState.PRUNED] + failed,
    )


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.{_DIGITS}g}") if math.isfinite(value) else None
    return value


def _state(trial: FrozenTrial) -> str:
    if trial.state == TrialState.FAIL:
        return "failed" if is_counted(trial) else f"requeued ({failure_kind(trial)})"
    return trial.state.name.lower()


def trial_table(trials: Sequence[FrozenTrial]) -> TrialTable:
    """One row per trial, stored column by column (compact for 10,000 trials).

    The table is made of values this function checked, so it is built without pydantic's
    validation (about 5% of the report's time at 10,000 trials otherwise).

    Returns:
        ``number``, ``cell_type``, ``state``, ``value``, ``epochs``, ``seconds`` and
        ``param_count``: lists of equal length; ``params``: each searched hyperparameter's column
        (None where a trial has no such parameter, e.g. another cell's option; a hidden
        size solved from a parameter budget is one). ``state`` is ``complete``,
        ``pruned``, ``failed`` (a model outcome: diverged or error), ``requeued
        (interrupted|stale)``, ``running`` or ``waiting``; ``value`` is the objective (for
        a pruned trial, its value at pruning); ``epochs`` of a running trial are those it
        reported so far. ``log_scale`` names the parameters sampled on a log scale.
        Floats keep 6 significant digits; everything is JSON-safe.
    """
    columns: dict[str, list[Any]] = {
        k: [] for k in ("number", "cell_type", "state", "value", "epochs", "seconds", "param_count")
    }
    rows: list[dict[str, Any]] = []
    for trial in sorted(trials, key=lambda t: t.number):
        attrs, params = trial.user_attrs, trial.params
        epochs = attrs.get(Attr.EPOCHS_RUN)
        if epochs is None and trial.intermediate_values:
            epochs = len(trial.intermediate_values)
        columns["number"].append(trial.number)
        columns["cell_type"].append(cell_of(trial))
        columns["state"].append(_state(trial))
        columns["value"].append(_round(trial.value) if trial.values else None)
        columns["epochs"].append(epochs)
        columns["seconds"].append(_round(attrs.get(Attr.SECONDS)))
        columns["param_count"].append(attrs.get(Attr.PARAM_COUNT))
        row = {k: v for k, v in params.items() if k != CELL_PARAM}
        size = attrs.get(Attr.HIDDEN_SIZE)
        if size is not None and "hidden_size" not in params:
            row["hidden_size"] = size  # solved from a parameter budget
        rows.append(row)
    names = sorted({name for row in rows for name in row})
    return TrialTable.model_construct(
        number=columns["number"],
        cell_type=columns["cell_type"],
        state=columns["state"],
        value=columns["value"],
        epochs=columns["epochs"],
        seconds=columns["seconds"],
        param_count=columns["param_count"],
        params={name: [_round(row.get(name)) for row in rows] for name in names},
        log_scale=_log_scaled(trials, names),
    )


def _log_scaled(trials: Sequence[FrozenTrial], names: list[str]) -> list[str]:
    """The parameters sampled on a log scale (their distributions say so)."""
    found: dict[str, bool] = {}
    for trial in trials:
        for name, dist in trial.distributions.items():
            if name not in found:
                found[name] = bool(getattr(dist, "log", False))
        if len(found) >= len(names) + 1:
            break
    return [name for name in names if found.get(name)]


def allocation(trials: Sequence[FrozenTrial]) -> Allocation:
    """Cell type of every trial by trial number and by completion order."""
    ordered = sorted(trials, key=lambda t: t.number)
    finished = sorted(
        (t for t in trials if t.datetime_complete is not None),
        key=lambda t: (t.datetime_complete, t.number),
    )
    rank = {t.number: i + 1 for i, t in enumerate(finished)}
    by_number: dict[str, list[int]] = {}
    by_completion: dict[str, list[int]] = {}
    for trial in ordered:
        cell = cell_of(trial) or "(none)"
        by_number.setdefault(cell, []).append(trial.number)
        if trial.number in rank:
            by_completion.setdefault(cell, []).append(rank[trial.number])
    for ranks in by_completion.values():
        ranks.sort()
    return Allocation(trial_number=by_number, completion_rank=by_completion)


def environment(trials: Sequence[FrozenTrial], study_seed: int, n_bootstrap: int) -> Environment:
    """Versions, devices, precisions and seeds seen on the trials, and the bootstrap's."""

    def seen(key: Attr) -> list[str]:
        return sorted({str(t.user_attrs[key]) for t in trials if key in t.user_attrs})

    devices = Counter(str(t.user_attrs[Attr.DEVICE]) for t in trials if Attr.DEVICE in t.user_attrs)
    precisions = Counter(
        str(t.user_attrs[Attr.PRECISION]) for t in trials if Attr.PRECISION in t.user_attrs
    )
    return Environment(
        torch_versions=seen(Attr.TORCH_VERSION),
        cellsearch_versions=seen(Attr.CELLSEARCH_VERSION),
        optuna_version=optuna.__version__,
        report_cellsearch_version=cellsearch.__version__,
        devices=dict(sorted(devices.items())),
        study_seed=study_seed,
        trial_seeds_recorded=sum(Attr.SEED in t.user_attrs for t in trials),
        precisions=dict(sorted(precisions.items())),
        bootstrap=BootstrapInfo(replicates=n_bootstrap, seed=(study_seed, "cell index")),
    )
