"""Task specs and their trivial baselines, for code that must not import torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cellsearch.search.tasks.bundled import (
    UCR_DATASETS,
    ChoralesTask,
    ForecastTask,
    UcrTask,
    prepare_forecast,
)
from cellsearch.search.tasks.file_formats import DatasetError
from cellsearch.search.tasks.synthetic import (
    TASKS,
    AddingTask,
    AnyTask,
    CopyTask,
    DatasetTask,
    DigitsTask,
    TaskInfo,
    TaskSpec,
    copy_baseline,
)

__all__ = [
    "TASKS",
    "AddingTask",
    "Baseline",
    "ChoralesTask",
    "CopyTask",
    "DatasetTask",
    "DigitsTask",
    "ForecastTask",
    "TaskInfo",
    "TaskSpec",
    "UcrTask",
    "baseline_of",
]


@dataclass(frozen=True)
class Baseline:
    """The validation loss of a task's trivial predictor.

    Attributes:
        value: The loss, or None where it depends on data that are only read when the
            task is built (uploads, chorales); the worker then measures it into
            ``TaskData.baseline``.
        description: The predictor, in words.
    """

    value: float | None
    description: str


def baseline_of(spec: AnyTask) -> Baseline:
    """The baseline loss of ``spec``, without generating or loading the training data.

    Closed forms for the synthetic tasks and UCR (uniform prediction, ``ln K``). The
    forecasting persistence baseline reads the small series file (numpy only) and is None
    when its package is missing.
    """
    description = TASKS[spec.kind].baseline_description
    if isinstance(spec, AddingTask):
        return Baseline(1 / 6, description)
    if isinstance(spec, CopyTask):
        return Baseline(copy_baseline(spec.seq_len), description)
    if isinstance(spec, DigitsTask):
        return Baseline(math.log(10), description)
    if isinstance(spec, UcrTask):
        k = UCR_DATASETS[spec.name].n_classes
        return Baseline(math.log(k), f"uniform prediction over {k} classes (cross-entropy ln {k})")
    if isinstance(spec, ForecastTask):
        try:
            return Baseline(prepare_forecast(spec).baseline, description)
        except DatasetError:
            return Baseline(None, description)
    return Baseline(None, description + "; measured on the data when the task is built")
