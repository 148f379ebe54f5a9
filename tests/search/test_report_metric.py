"""The objective's name and bounds agree with what each task's data say it measures."""

from __future__ import annotations

from typing import Any

import pytest

from cellsearch.search.report.details import fixed_params, trial_counts
from cellsearch.search.report.metric import (
    TASK_QUANTITIES,
    objective_metric,
    quantities_of,
    quantity_label,
)
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.tasks import TASKS, prepare_task
from tests.search.test_spec import spec_data

# a small spec of every task kind whose data are built in (or shipped by the extra)
TASK_SPECS: dict[str, dict[str, Any]] = {
    "adding": {"kind": "adding", "seq_len": 5, "n_train": 4, "n_val": 4, "n_test": 4},
    "copy": {"kind": "copy", "seq_len": 3, "n_train": 4, "n_val": 4, "n_test": 4},
    "digits": {"kind": "digits", "mode": "rows"},
    "ucr": {"kind": "ucr", "name": "ItalyPowerDemand"},
    "forecast": {"kind": "forecast", "name": "airline", "window": 12},
    "chorales": {"kind": "chorales", "max_pieces": 12},
}
NEEDS_EXTRA = {"ucr": "aeon", "forecast": "aeon", "chorales": "music21"}


def test_every_task_kind_but_uploads_has_its_quantities() -> None:
    assert set(TASK_QUANTITIES) == set(TASKS) - {"dataset"} == set(TASK_SPECS)


@pytest.mark.parametrize("kind", list(TASK_SPECS))
def test_names_match_the_trainers_loss_and_metric(kind: str) -> None:
    if kind in NEEDS_EXTRA:
        pytest.importorskip(NEEDS_EXTRA[kind])
    spec = parse_spec(spec_data(task=TASK_SPECS[kind]))
    meta = prepare_task(spec.task, 0).meta
    assert quantities_of(spec) == (meta.loss, meta.metric)


@pytest.mark.parametrize(
    ("task", "objective", "label", "low", "high"),
    [
        (TASK_SPECS["adding"], {}, "validation MSE", 0.0, None),
        (TASK_SPECS["copy"], {}, "validation cross-entropy", 0.0, None),
        (TASK_SPECS["digits"], {"metric": "val_metric", "direction": "maximize"},
         "validation accuracy", 0.0, 1.0),
        (TASK_SPECS["chorales"], {}, "validation Bernoulli NLL per step", 0.0, None),
        ({"kind": "dataset", "dataset_id": "x", "task": "regression"}, {}, "validation MSE",
         0.0, None),
        ({"kind": "dataset", "dataset_id": "x"}, {}, "validation loss", 0.0, None),
        ({"kind": "dataset", "dataset_id": "x"}, {"metric": "val_metric", "direction": "maximize"},
         "validation metric", None, None),
    ],
)  # fmt: skip
def test_objective_label_and_bounds(
    task: dict[str, Any], objective: dict[str, Any], label: str, low: Any, high: Any
) -> None:
    metric = objective_metric(parse_spec(spec_data(task=task, objective=objective)))
    assert (metric.label, metric.low, metric.high) == (label, low, high)


def test_quantity_labels() -> None:
    assert quantity_label("mse") == "test MSE"
    assert quantity_label("accuracy", "validation") == "validation accuracy"
    assert quantity_label("new_thing") == "test new thing"
    assert quantity_label(None) == "test metric"


def test_fixed_params_of_a_spec() -> None:
    spec = parse_spec(
        spec_data(
            space={
                "cell_type": ["lstm", "gru"],
                "batch_size": [64],
                "lstm.forget_bias": 1.5,
                "learning_rate": {"low": 0.01, "high": 0.01},
            }
        )
    )
    fixed = fixed_params(spec)
    assert fixed["batch_size"] == 64 and fixed["lstm.forget_bias"] == 1.5
    assert fixed["learning_rate"] == 0.01 and "hidden_size" not in fixed  # a range: searched


def test_trial_counts_of_no_trials() -> None:
    assert trial_counts([]).model_dump() == dict.fromkeys(
        ("complete", "pruned", "failed", "requeued", "running", "waiting", "finished"), 0
    )
