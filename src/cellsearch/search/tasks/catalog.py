"""The task registry: every task kind, by name (importable without torch).

Each module that implements task kinds lists them in its ``KINDS``; this registry collects
them. ``GET /tasks``, spec validation (the discriminated :data:`TaskSpec`) and building
(:func:`build_task`) all read :data:`TASKS`, so adding a task kind to a module is the
only change it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

from cellsearch.search.tasks import bundled, synthetic, user_data
from cellsearch.search.tasks.base import Baseline, DatasetResolver, TaskKind, TaskSpecBase
from cellsearch.search.tasks.data import TaskData, to_tensors

if TYPE_CHECKING:
    from torch import Tensor

TASKS: dict[str, TaskKind[Any]] = {
    entry.kind: entry for module in (synthetic, bundled, user_data) for entry in module.KINDS
}
"""Every task kind, by its spec's ``kind``."""

if TYPE_CHECKING:
    TaskSpec = TaskSpecBase
else:
    TaskSpec = Annotated[
        Union[tuple(entry.spec for entry in TASKS.values())],  # noqa: UP007 - built at run time
        Field(discriminator="kind"),
    ]
"""The task part of a study spec: one of the registered spec models, chosen by ``kind``."""


def get_task_kind(kind: str) -> TaskKind[Any]:
    """The registry entry of ``kind``.

    Raises:
        KeyError: an unknown kind (the message lists the known ones).
    """
    try:
        return TASKS[kind]
    except KeyError:
        raise KeyError(f"unknown task kind {kind!r}; known: {', '.join(TASKS)}") from None


def baseline_of(spec: TaskSpecBase) -> Baseline:
    """The baseline loss of ``spec``, without generating or loading the training data."""
    return get_task_kind(spec.kind).baseline_of(spec)


def prepare_task(
    spec: TaskSpecBase, seed: int, *, resolve_dataset: DatasetResolver | None = None
) -> TaskData[Any]:
    """The task's splits as numpy arrays, deterministic in ``seed`` (no torch).

    Raises:
        DatasetError: A bundled data set's package is missing, or an upload is invalid.
    """
    return get_task_kind(spec.kind).prepare(spec, seed, resolve_dataset)


def build_task(
    spec: TaskSpecBase, seed: int, *, resolve_dataset: DatasetResolver | None = None
) -> TaskData[Tensor]:
    """Generate or load the data of a task as CPU tensors, deterministically from ``seed``.

    Args:
        spec: The validated task spec.
        seed: Seed of the data (independent of the training seed): synthetic draws and the
            seeded splits of real data (a chronological split ignores it).
        resolve_dataset: Reads an uploaded data set by id; needed for ``dataset`` tasks.

    Raises:
        DatasetError: A bundled data set's package is missing, or an upload is invalid.
    """
    return to_tensors(prepare_task(spec, seed, resolve_dataset=resolve_dataset))
