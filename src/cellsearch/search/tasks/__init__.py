"""Tasks and their data: the task registry, spec models, data preparation (numpy only).

- :mod:`.registry`: :data:`TASKS` (every task kind), :data:`TaskSpec`, :func:`build_task`,
  :func:`baseline_of`.
- :mod:`.synthetic` (adding, copy, digits), :mod:`.bundled` (UCR/UEA, forecasting,
  chorales), :mod:`.user_data` (uploads): the kinds themselves.
- :mod:`.data`: :class:`TaskData` (numpy while prepared, tensors once built).
- :mod:`.file_formats` (NPZ/CSV parsing) and :mod:`.sequences` (padding, splits,
  standardisation, forecasting windows).
"""

from cellsearch.search.tasks.base import Baseline, DatasetResolver, TaskKind, TaskSpecBase
from cellsearch.search.tasks.bundled import ChoralesTask, ForecastTask, UcrTask
from cellsearch.search.tasks.data import Split, TaskData, TaskMeta
from cellsearch.search.tasks.registry import (
    TASKS,
    TaskSpec,
    baseline_of,
    build_task,
    get_task_kind,
    prepare_task,
)
from cellsearch.search.tasks.synthetic import AddingTask, CopyTask, DigitsTask
from cellsearch.search.tasks.user_data import DatasetTask

__all__ = [
    "TASKS",
    "AddingTask",
    "Baseline",
    "ChoralesTask",
    "CopyTask",
    "DatasetResolver",
    "DatasetTask",
    "DigitsTask",
    "ForecastTask",
    "Split",
    "TaskData",
    "TaskKind",
    "TaskMeta",
    "TaskSpec",
    "TaskSpecBase",
    "UcrTask",
    "baseline_of",
    "build_task",
    "get_task_kind",
    "prepare_task",
]
