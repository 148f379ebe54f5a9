"""What every task kind provides: its spec class, its words, its baseline and its data.

A task kind is one :class:`TaskKind` entry, defined in the module that implements the
kind and collected by :mod:`cellsearch.search.tasks.catalog`. Everything here is
importable without torch (the API process reads specs, descriptions and baselines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cellsearch.search.tasks.data import TaskData

DatasetResolver = Callable[[str], tuple[bytes, str]]
"""Maps an uploaded data set's id to its content and format (``npz`` or ``csv``)."""


class TaskSpecBase(BaseModel):
    """Base of every task spec: a ``kind`` literal plus the sizes the server limits."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    kind: str

    def sequence_length(self) -> int:
        """The length T of the model's input sequences (0: unknown until the data are read)."""
        raise NotImplementedError

    def dataset_size(self) -> int:
        """Sequences over all splits (0: unknown until the data are read)."""
        raise NotImplementedError


class HeldOutSplits(TaskSpecBase):
    """Validation and test shares carved from one pool by a seeded (stratified) split."""

    val_fraction: float = Field(
        default=0.15, ge=0.01, lt=1.0, description="Share held out for validation (seeded split)."
    )
    test_fraction: float = Field(
        default=0.15, ge=0.01, lt=1.0, description="Share held out for testing (seeded split)."
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> Self:
        if self.val_fraction + self.test_fraction > 0.9:
            raise ValueError("val_fraction + test_fraction must be at most 0.9")
        return self


@dataclass(frozen=True)
class Baseline:
    """The value of a study's objective that a task's trivial predictor scores.

    Attributes:
        value: The validation loss (objective ``val_loss``) or metric (``val_metric``), or
            None where it depends on data that are only read when the task is built
            (uploads, classes' frequencies, chorales) and they were not read
            (:func:`cellsearch.search.tasks.baselines.objective_baseline` reads them).
        description: The predictor, in words.
        quantities: The task's (loss, metric) names, when the data were read to measure
            the baseline (an upload's kind may only be known then); else None.
    """

    value: float | None
    description: str
    quantities: tuple[str, str] | None = None


S = TypeVar("S", bound=TaskSpecBase)


@dataclass(frozen=True)
class TaskKind(Generic[S]):
    """One kind of task: the registry's entry.

    Attributes:
        kind: The spec's ``kind`` value.
        title: A short name for people.
        description: One paragraph: the data, the target, the split.
        baseline_description: The trivial predictor whose loss the report draws.
        spec: The pydantic model of the task's part of a study spec.
        prepare: ``prepare(spec, seed, resolve_dataset)`` -> the three splits as numpy
            arrays, deterministic in ``seed`` (a chronological split ignores it).
        baseline: The baseline loss of a spec without generating or loading training data
            (closed forms; None where only the data can tell).
        metric_baseline: Likewise for the task's metric where it is not the loss (None:
            the metric is the loss, whose baseline serves both).
        metric_baseline_description: The trivial predictor of the metric, in words.
    """

    kind: str
    title: str
    description: str
    baseline_description: str
    spec: type[S]
    prepare: Callable[[S, int, DatasetResolver | None], TaskData[np.ndarray]]
    baseline: Callable[[S], float | None]
    metric_baseline: Callable[[S], float | None] | None = None
    metric_baseline_description: str = ""

    def baseline_of(self, spec: Any, objective: str = "val_loss") -> Baseline:
        """The :class:`Baseline` of ``spec`` (a spec of this kind) for ``objective``
        (``val_loss`` or ``val_metric``), from closed forms only (no data read)."""
        if objective == "val_metric" and self.metric_baseline is not None:
            value, description = self.metric_baseline(spec), self.metric_baseline_description
        else:
            value, description = self.baseline(spec), self.baseline_description
        suffix = "" if value is not None else "; measured on the data when the task is built"
        return Baseline(value, description + suffix)


def no_closed_form(_spec: Any) -> float | None:
    """A baseline that only the data can tell."""
    return None
