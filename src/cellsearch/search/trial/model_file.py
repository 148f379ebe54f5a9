"""A completed trial's best-epoch weights as a model file (:mod:`cellsearch.models.model_file`).

The file says how to build the model and where it comes from: the study and trial, the
objective and its value, the test metric at the best epoch, and the task spec with the
data seed, so that ``build_task(task, seed)`` gives the very splits it was scored on, and
what new data need to look like the model's (``preprocessing``: the training split's
per-feature ``mean`` and ``scale`` of the inputs and targets, ``(x - mean) / scale``, and
the number of classes, labelled 0..K-1, of a classification).
"""

from __future__ import annotations

from typing import Any

import cellsearch
from cellsearch.models.model_file import ModelSpec, dump_model
from cellsearch.search.record import finite
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.data import TaskMeta
from cellsearch.search.trial.trainer import TrainResult
from cellsearch.search.trial_config import TrialConfig


def model_file(
    result: TrainResult,
    config: TrialConfig,
    meta: TaskMeta,
    spec: StudySpec,
    study_name: str,
    number: int,
    value: float,
) -> bytes:
    """The model file of a completed trial (its run kept its best-epoch weights)."""
    if result.best_weights is None:
        raise ValueError("the run kept no best-epoch weights (train with keep_best_weights)")
    model = config.model
    shape = ModelSpec(
        cell=model.cell_type, input_size=meta.input_size, hidden_size=model.hidden_size,
        num_layers=model.num_layers, dropout=model.dropout, output_size=meta.output_size,
        head=meta.head, cell_options=dict(model.cell_options),
    )  # fmt: skip
    context: dict[str, Any] = {
        "study": study_name,
        "trial": number,
        "objective": {"metric": spec.objective.metric, "value": finite(value)},
        "best_epoch": result.best_epoch,
        "test": {
            "loss": finite(result.test_loss),
            "metric": finite(result.test_metric),
            "metric_name": meta.metric,
        },
        "task": spec.task.model_dump(mode="json"),
        "preprocessing": {
            "standardised": dict(meta.preprocessing) if meta.preprocessing else None,
            "classes": meta.output_size if meta.loss == "cross_entropy" else None,
        },
        "data_seed": spec.seed,
        "loss": meta.loss,
        "cellsearch_version": cellsearch.__version__,
    }
    return dump_model(result.best_weights, shape, context)
