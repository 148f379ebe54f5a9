"""The trivial baseline of a study's objective, measured on the task's data when needed.

Every task has a trivial predictor, and the report tells a cell type that learned the
task from one that did not by the margin it gains over that predictor
(:mod:`cellsearch.search.report.learning`). Which predictor, per kind of task:

=========================  =======================================  ======================
task                       loss (``val_loss``)                      metric (``val_metric``)
=========================  =======================================  ======================
classification (digits,    the training class frequencies           the training majority
UCR, uploads)              (cross-entropy)                          class (accuracy)
regression (adding,        the training mean (adding: the           the same (MSE)
uploads)                   constant 1, MSE 1/6)
per-step (copy, uploads)   the per-step prior (copy: blanks, then   per-step majority
                           uniform over the symbols)                class, or the loss
forecasting                persistence or the training mean,        the same (MSE)
                           whichever scores lower
chorales                   each key's training frequency            the same (NLL)
=========================  =======================================  ======================

A closed form serves where one exists (:meth:`~cellsearch.search.tasks.base.TaskKind.
baseline_of`); otherwise :func:`objective_baseline` prepares the task's data (numpy only,
no torch: the API process may call it) with the study's seed, as a worker does, and
reads the baseline off the validation split. Results are kept per (task, seed,
objective), so a report rebuilt after every trial prepares the data once per process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.base import Baseline, DatasetResolver, TaskSpecBase
from cellsearch.search.tasks.catalog import get_task_kind, prepare_task

_KEPT = 256  # measured baselines kept per process
_measured: OrderedDict[tuple[str, int, str], Baseline] = OrderedDict()
_lock = threading.Lock()


def objective_baseline(
    spec: TaskSpecBase,
    objective: str,
    *,
    seed: int,
    resolve_dataset: DatasetResolver | None = None,
) -> Baseline:
    """The trivial predictor's validation value of ``objective`` on the task ``spec``.

    Args:
        spec: The task.
        objective: ``val_loss`` or ``val_metric``.
        seed: The study's seed, which also seeds its data (splits, synthetic draws).
        resolve_dataset: Reads an uploaded data set (None: an upload's baseline stays
            unknown).

    Returns:
        The closed form where the kind has one; else the value measured on the data, with
        the task's (loss, metric) names; or a baseline without value (and a description
        that says why) when the data cannot be read here (a package or the data set is
        missing).
    """
    closed = get_task_kind(spec.kind).baseline_of(spec, objective)
    if closed.value is not None:
        return closed
    key = (spec.model_dump_json(), seed, objective)
    with _lock:
        if key in _measured:
            _measured.move_to_end(key)
            return _measured[key]
    if spec.kind == "dataset" and resolve_dataset is None:
        return closed
    try:
        meta = prepare_task(spec, seed, resolve_dataset=resolve_dataset).meta
    except (DatasetError, ImportError, OSError, ValueError) as exc:
        return Baseline(None, f"{closed.description} (not measured here: {exc})")
    value, description = meta.baseline_for(objective)
    found = Baseline(value, description, quantities=(meta.loss, meta.metric))
    with _lock:
        _measured[key] = found
        while len(_measured) > _KEPT:
            _measured.popitem(last=False)
    return found


def forget_measured() -> None:
    """Drop the measured baselines kept by this process (tests)."""
    with _lock:
        _measured.clear()
