"""The ``dataset`` task: a data set the user uploaded (``POST /datasets``), by its id.

The service stores uploads in the database; a worker reads one through the
``resolve_dataset`` callable it is given, parses it again (:mod:`.file_formats`) and
splits and standardises it by its kind (:mod:`.sequences`).
"""

from __future__ import annotations

import sys
from typing import Literal

import numpy as np
from pydantic import Field

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.base import DatasetResolver, HeldOutSplits, TaskKind, no_closed_form
from cellsearch.search.tasks.data import TaskData
from cellsearch.search.tasks.file_formats import parse_upload
from cellsearch.search.tasks.sequences import prepare_upload


class DatasetTask(HeldOutSplits):
    """A data set uploaded by the user (``POST /datasets``), referenced by its id."""

    kind: Literal["dataset"] = Field(description="Task identifier.")
    dataset_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Id of the uploaded data set."
    )
    task: Literal["classification", "regression", "per_step", "forecasting"] | None = Field(
        default=None, description="Task kind; None: inferred from the data where unambiguous."
    )
    window: int = Field(
        default=16, ge=1, le=4096, description="Forecasting: input steps per window."
    )
    horizon: int = Field(
        default=1, ge=1, le=512, description="Forecasting: future steps predicted."
    )

    def sequence_length(self) -> int:
        """Return 0: unknown until the data are read (limits are checked at upload)."""
        return 0

    def dataset_size(self) -> int:
        """Return 0: unknown until the data are read (limits are checked at upload)."""
        return 0


def prepare_dataset(
    spec: DatasetTask, seed: int, resolve_dataset: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Read, parse, split and standardise an uploaded data set.

    Raises:
        DatasetError: no resolver was given, or the stored data set is unreadable.
    """
    if resolve_dataset is None:
        raise DatasetError(f"dataset {spec.dataset_id!r}: no dataset resolver was given")
    content, fmt = resolve_dataset(spec.dataset_id)
    if fmt not in ("npz", "csv"):
        raise DatasetError(f"dataset {spec.dataset_id!r} has unknown format {fmt!r}")
    # checked against the server's limits when it was uploaded; a compressed NPZ unpacks
    # to more than its stored size, so no size limit here
    dataset = parse_upload(content, fmt, kind=spec.task, max_bytes=sys.maxsize)  # type: ignore[arg-type]
    return prepare_upload(
        dataset,
        val_fraction=spec.val_fraction,
        test_fraction=spec.test_fraction,
        window=spec.window,
        horizon=spec.horizon,
        seed=seed,
    )


DATASET = TaskKind(
    kind="dataset",
    title="Uploaded data set",
    description=(
        "Sequences uploaded as NPZ or CSV (POST /datasets): classification from the "
        "last valid step, regression, per-step targets or forecasting windows. Seeded "
        "splits (stratified for classification); standardisation fitted on train."
    ),
    baseline_description=(
        "classification: the training class frequencies (cross-entropy); regression: the "
        "training mean; per-step: the training class frequencies or mean at every step; "
        "forecasting: the better of persistence and the training mean"
    ),
    spec=DatasetTask,
    prepare=prepare_dataset,
    baseline=no_closed_form,  # depends on the data
    metric_baseline=no_closed_form,
    metric_baseline_description=(
        "classification: the training majority class (accuracy); otherwise as the loss"
    ),
)
KINDS = (DATASET,)
"""The task kinds this module defines (collected by the registry)."""
