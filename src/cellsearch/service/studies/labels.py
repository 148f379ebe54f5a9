"""What optuna-dashboard shows of a study: its objective's name and its spec, in words.

optuna-dashboard reads everything from Optuna's tables. Without help it calls the
objective "Objective 0" and shows nothing of the spec; :func:`label_study` names the
objective (``study.set_metric_names``: "validation MSE", "validation accuracy"; an upload
whose kind the spec leaves to its data is named from its stored record) and writes the
spec as study user attributes, one readable line per part (the dashboard lists them as a
table), the task's trivial baseline of the objective among them.
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from sqlalchemy import Engine, select

from cellsearch.search.report.details import fixed_params
from cellsearch.search.report.metric import objective_metric, quantities_of, upload_quantities
from cellsearch.search.study.param_forms import FloatRange, IntRange
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.catalog import get_task_kind
from cellsearch.service.datasets.operations import get_dataset
from cellsearch.service.errors import NotFound
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import DatasetRecord, StudyRecord


def _range(name: str, value: Any) -> str | None:
    """A searched parameter in words; None for a fixed one."""
    if isinstance(value, IntRange | FloatRange):
        if value.low == value.high:
            return None
        return f"{name} {value.low:g} to {value.high:g}" + (" (log scale)" if value.log else "")
    if isinstance(value, list) and len(value) > 1:
        return f"{name} one of {', '.join(str(v) for v in value)}"
    return None


def data_quantities(engine: Engine | None, spec: StudySpec) -> tuple[str, str] | None:
    """An upload's (loss, metric) names from its stored record, where the spec leaves its
    kind to be inferred from the data (None otherwise, or without ``engine``)."""
    dataset_id = getattr(spec.task, "dataset_id", None)
    if engine is None or dataset_id is None or quantities_of(spec) is not None:
        return None
    try:
        record = get_dataset(engine=engine, dataset_id=dataset_id)
    except NotFound:
        return None
    return upload_quantities(record.kind, record.n_classes)


def objective_labels(engine: Engine, records: list[StudyRecord]) -> dict[str, str]:
    """The objective in words of each study whose spec alone cannot name it (an upload
    whose kind its data tell), from the stored data sets, read for a page of studies at
    once; the others are left out (their spec names the objective)."""
    specs = {r.name: r.study_spec() for r in records if r.dataset_id is not None}
    inferred = {
        name: str(getattr(spec.task, "dataset_id", ""))
        for name, spec in specs.items()
        if quantities_of(spec) is None
    }
    if not inferred:
        return {}
    with session_scope(engine) as session:
        rows = session.execute(
            select(DatasetRecord.id, DatasetRecord.kind, DatasetRecord.n_classes).where(
                DatasetRecord.id.in_(set(inferred.values()))
            )
        )
        kinds = {row.id: upload_quantities(row.kind, row.n_classes) for row in rows}
    return {
        name: objective_metric(specs[name], kinds.get(dataset_id)).label
        for name, dataset_id in inferred.items()
    }


def readable_spec(spec: StudySpec, quantities: tuple[str, str] | None = None) -> dict[str, str]:
    """The spec as short lines of text, keyed by what each describes (``quantities``: an
    upload's (loss, metric) names, :func:`data_quantities`)."""
    space = spec.space
    task = spec.task.model_dump(exclude={"kind"}, exclude_none=True)
    searched = [_range(name, value) for name, value in spec.space_params().items()]
    searched += [
        _range(f"{cell}.{option}", value)
        for cell, options in space.cell_options.items()
        for option, value in options.items()
    ]
    fixed = fixed_params(spec)
    baseline = get_task_kind(spec.task.kind).baseline_of(spec.task, spec.objective.metric)
    metric = objective_metric(spec, quantities)
    lines = {
        "task": f"{spec.task.kind}: " + ", ".join(f"{k}={v}" for k, v in task.items()),
        "objective": f"{metric.label} ({spec.objective.direction})",
        "cell types": ", ".join(spec.cell_types),
        "searched": "; ".join(s for s in searched if s) or "nothing besides the cell type",
        "fixed": ", ".join(f"{k}={v}" for k, v in fixed.items()) or "nothing",
        "budget": f"{spec.budget.n_trials} trials of at most {spec.budget.max_epochs} epochs"
        + (f", {spec.budget.max_trial_seconds:g} s each" if spec.budget.max_trial_seconds else ""),
        "search": f"{spec.allocation} allocation, {spec.sampler} sampler, pruner {spec.pruner}, "
        f"seed {spec.seed}",
        "baseline": (f"{baseline.value:.4g}, " if baseline.value is not None else "")
        + baseline.description,
    }
    if spec.param_budget is not None:
        lines["param budget"] = f"about {spec.param_budget} parameters per model"
    if spec.warm_start is not None:
        lines["warm start"] = (
            f"adaptive draws also shown the best {spec.warm_start.top_k} trials per cell type "
            f"of {', '.join(spec.warm_start.from_)}"
        )
    if spec.description:
        lines["description"] = spec.description
    return lines


def label_study(study: optuna.Study, spec: StudySpec, *, engine: Engine | None = None) -> None:
    """Name the study's objective and write its spec where optuna-dashboard shows them
    (``engine``: where an uploaded data set's record says what its kind names it)."""
    quantities = data_quantities(engine, spec)
    with warnings.catch_warnings():  # set_metric_names is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([objective_metric(spec, quantities).label])
    for key, text in readable_spec(spec, quantities).items():
        study.set_user_attr(key, text)
