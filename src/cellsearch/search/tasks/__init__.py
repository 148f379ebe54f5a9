"""Tasks and their data: the task registry, spec models, data preparation (numpy only).

- :mod:`.catalog`: :data:`TASKS` (every task kind), :data:`TaskSpec`, :func:`build_task`,
  :func:`baseline_of`.
- :mod:`.synthetic` (adding, copy, digits), :mod:`.bundled` (UCR/UEA, forecasting,
  chorales), :mod:`.user_data` (uploads): the kinds themselves.
- :mod:`.baselines`: :func:`objective_baseline`, the trivial predictor's score of a
  study's objective (measured on the data where no closed form exists).
- :mod:`.data`: :class:`TaskData` (numpy while prepared, tensors once built).
- :mod:`.file_formats` (NPZ/CSV parsing), :mod:`.package_files` (bundled files) and
  :mod:`.sequences` (padding, splits, standardisation, forecasting windows).

Names are loaded on first use, so that :mod:`.data` alone (numpy) serves the trainer
where pydantic is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsearch.search.tasks.base import Baseline, DatasetResolver, TaskKind, TaskSpecBase
    from cellsearch.search.tasks.baselines import objective_baseline
    from cellsearch.search.tasks.bundled import ChoralesTask, ForecastTask, UcrTask
    from cellsearch.search.tasks.catalog import (
        TASKS,
        TaskSpec,
        baseline_of,
        build_task,
        get_task_kind,
        prepare_task,
    )
    from cellsearch.search.tasks.data import Split, TaskData, TaskMeta
    from cellsearch.search.tasks.synthetic import AddingTask, CopyTask, DigitsTask
    from cellsearch.search.tasks.user_data import DatasetTask

_MODULES = {
    "base": ("Baseline", "DatasetResolver", "TaskKind", "TaskSpecBase"),
    "baselines": ("objective_baseline",),
    "bundled": ("ChoralesTask", "ForecastTask", "UcrTask"),
    "data": ("Split", "TaskData", "TaskMeta"),
    "catalog": ("TASKS", "TaskSpec", "baseline_of", "build_task", "get_task_kind", "prepare_task"),
    "synthetic": ("AddingTask", "CopyTask", "DigitsTask"),
    "user_data": ("DatasetTask",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped by module, as _MODULES
    "Baseline", "DatasetResolver", "TaskKind", "TaskSpecBase",
    "objective_baseline",
    "ChoralesTask", "ForecastTask", "UcrTask",
    "Split", "TaskData", "TaskMeta",
    "TASKS", "TaskSpec", "baseline_of", "build_task", "get_task_kind", "prepare_task",
    "AddingTask", "CopyTask", "DigitsTask",
    "DatasetTask",
]  # fmt: skip
assert set(__all__) == set(_WHERE)
