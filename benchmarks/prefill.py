"""Prefilling a study with finished trials, for the scale-out benchmark's large studies.

The trials are what a worker would have left: each carries its deal (its claim index)
and the deal's cell type, sampled parameters, a curve of per-epoch values, a value, and
the state COMPLETE (a few PRUNED). :func:`add_finished` writes them through Optuna's
public ``add_trials``, in batches (about 70 trials a second here: 100,000 take 25
minutes); :func:`add_finished_bulk` writes the same rows into Optuna's tables with one
multi-row ``INSERT`` per table and batch (thousands a second), and
``python benchmarks/prefill.py URL`` checks on a throwaway study that the two give the
same trials as Optuna reads them.
"""

from __future__ import annotations

import json
import math
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import optuna
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models

from cellsearch.search.record import Attr
from cellsearch.search.study.sampling import dealt_cell

BATCH = 500
PRUNED, COMPLETE = optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.COMPLETE


def finished_trials(spec: Any, n: int) -> Iterator[list[optuna.trial.FrozenTrial]]:
    """``n`` finished trials (deals ``0 .. n-1``) for ``spec``'s study, in batches."""
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
        yield trials


def add_finished(storage: optuna.storages.BaseStorage, spec: Any, n: int) -> None:
    """Add ``n`` finished trials (deals ``0 .. n-1``) to ``spec``'s study, through Optuna."""
    study = optuna.load_study(study_name=spec.name, storage=storage)
    for trials in finished_trials(spec, n):
        study.add_trials(trials)


def add_finished_bulk(url: str, spec: Any, n: int) -> None:
    """The trials of :func:`add_finished`, written straight into Optuna's tables (the
    study has no trials yet): each table's rows of a batch in one multi-row ``INSERT``,
    in the stored forms Optuna's own storage writes (:func:`_child_rows`)."""
    from sqlalchemy import create_engine, insert, select

    engine = create_engine(url)
    trials = models.TrialModel.__table__
    try:
        with engine.begin() as conn:
            study_id = conn.execute(
                select(models.StudyModel.study_id).where(models.StudyModel.study_name == spec.name)
            ).scalar_one()
            number = 0
            for batch in finished_trials(spec, n):
                rows = [{"number": number + i, "study_id": study_id, "state": t.state.name,
                         "datetime_start": _naive(t.datetime_start),
                         "datetime_complete": _naive(t.datetime_complete)}
                        for i, t in enumerate(batch)]  # fmt: skip
                number += len(batch)
                returning = insert(trials).returning(
                    trials.c.trial_id, sort_by_parameter_order=True
                )
                ids = conn.execute(returning, rows).scalars().all()
                for table, table_rows in _child_rows(zip(ids, batch, strict=True)).items():
                    if table_rows:
                        conn.execute(insert(table), table_rows)
    finally:
        engine.dispose()


def _child_rows(trials: Iterator[tuple[int, optuna.trial.FrozenTrial]]) -> dict[Any, list[Any]]:
    """The rows of the trials' parameters, attributes, values and curves, by table."""
    values_of, curve_of = models.TrialValueModel, models.TrialIntermediateValueModel
    rows: dict[Any, list[Any]] = {
        model.__table__: []
        for model in (models.TrialParamModel, models.TrialUserAttributeModel, values_of, curve_of)
    }
    params, attrs, values, curves = rows.values()
    for trial_id, t in trials:
        for name, value in t.params.items():
            dist = t.distributions[name]
            params.append({"trial_id": trial_id, "param_name": name,
                           "param_value": dist.to_internal_repr(value),
                           "distribution_json": distribution_to_json(dist)})  # fmt: skip
        attrs += [{"trial_id": trial_id, "key": k, "value_json": json.dumps(v)}
                  for k, v in t.user_attrs.items()]  # fmt: skip
        if t.value is not None:
            stored, kind = values_of.value_to_stored_repr(t.value)
            values.append({"trial_id": trial_id, "objective": 0, "value": stored,
                           "value_type": kind.name})  # fmt: skip
        for step, v in t.intermediate_values.items():
            stored, ikind = curve_of.intermediate_value_to_stored_repr(v)
            curves.append({"trial_id": trial_id, "step": step, "intermediate_value": stored,
                           "intermediate_value_type": ikind.name})  # fmt: skip
    return rows


def _naive(moment: datetime | None) -> datetime | None:
    """A datetime as Optuna's tables hold it: UTC, without a zone (a naive one is local
    time, as Optuna's own storage takes it)."""
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def check(url: str, n: int = 300) -> None:
    """Prefill two studies of ``n`` trials, one each way, and compare what Optuna reads."""
    from scale_out import make_spec

    storage = optuna.storages.RDBStorage(url)
    specs = [make_spec(f"prefill-{way}-{uuid.uuid4().hex[:6]}", n, 4) for way in ("api", "bulk")]
    for spec in specs:
        optuna.create_study(study_name=spec.name, storage=storage)
    add_finished(storage, specs[0], n)
    add_finished_bulk(url, specs[1], n)
    read = [optuna.load_study(study_name=s.name, storage=storage).get_trials() for s in specs]
    fields = ("number", "state", "value", "params", "distributions", "user_attrs",
              "intermediate_values")  # fmt: skip
    for a, b in zip(*read, strict=True):
        for field in fields:
            if getattr(a, field) != getattr(b, field):
                raise SystemExit(f"trial {a.number}: {field} differs: {getattr(a, field)!r} "
                                 f"through Optuna, {getattr(b, field)!r} in bulk")  # fmt: skip
    for spec in specs:
        optuna.delete_study(study_name=spec.name, storage=storage)
    print(f"{n} trials: the same through Optuna and in bulk")


if __name__ == "__main__":
    check(sys.argv[1])
