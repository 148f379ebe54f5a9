"""Task specs and their trivial baselines, for code that must not import torch."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cellsearch.search.tasks import (
    TASKS,
    AddingTask,
    CopyTask,
    DigitsTask,
    TaskInfo,
    TaskSpec,
    copy_baseline,
)

__all__ = ["TASKS", "AddingTask", "Baseline", "CopyTask", "DigitsTask", "TaskInfo", "TaskSpec"]


@dataclass(frozen=True)
class Baseline:
    """The validation loss of a task's trivial predictor, in closed form."""

    value: float
    description: str


def baseline_of(spec: AddingTask | CopyTask | DigitsTask) -> Baseline:
    """The closed-form baseline loss of ``spec`` (no data is generated)."""
    description = TASKS[spec.kind].baseline_description
    if isinstance(spec, AddingTask):
        return Baseline(1 / 6, description)
    if isinstance(spec, CopyTask):
        return Baseline(copy_baseline(spec.seq_len), description)
    return Baseline(math.log(10), description)
