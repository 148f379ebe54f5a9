"""A task's data: three splits and what the trainer needs to know about them.

One class serves both stages. Tasks are prepared as numpy arrays (``TaskData[np.ndarray]``,
no torch: the service reads specs and baselines without it); the worker turns them into
tensors once (``TaskData[Tensor]``, :func:`to_tensors`).

Inputs are float32 ``(N, T, I)``. Targets are float32 ``(N, O)`` for regression, int64
``(N,)`` for last-step classification, int64 ``(N, T)`` for per-step classification,
float32 ``(N, T, O)`` for per-step regression (``mse``) and per-step binary targets
(``bce``, e.g. piano rolls).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

SPLITS = ("train", "val", "test")
A = TypeVar("A")
B = TypeVar("B")


@dataclass(frozen=True)
class TaskMeta:
    """What the trainer and the report need to know about a task's data.

    Attributes:
        input_size: Features per step.
        output_size: Outputs per prediction (classes for classification).
        head: ``last`` (one prediction per sequence) or ``per_step``.
        loss: ``mse`` (mean over target elements), ``cross_entropy`` (mean over targets)
            or ``bce`` (Bernoulli negative log-likelihood summed over the ``O`` outputs of
            a step, averaged over steps).
        metric: Name of the task's metric (``accuracy``, ``mse``, ``nll``...).
        baseline: Validation loss of the trivial predictor described by
            ``baseline_description``; a model that does not beat it learned nothing.
        baseline_description: The trivial predictor, in words.
        metric_baseline: The trivial predictor's validation metric where the metric is not
            the loss (accuracy: the training majority class); None where it is the loss.
        metric_baseline_description: That predictor, in words.
        preprocessing: How raw data became the model's inputs and targets, JSON-ready:
            ``inputs`` and ``targets`` each ``{"mean": [...], "scale": [...]}`` per feature
            (standardised with the training split's statistics), or None where they are
            used as they come. A kept model file carries it, so new data can be prepared
            alike. None for the synthetic tasks, whose data are never standardised.
    """

    input_size: int
    output_size: int
    head: Literal["last", "per_step"]
    loss: Literal["mse", "cross_entropy", "bce"]
    metric: str
    baseline: float
    baseline_description: str
    metric_baseline: float | None = None
    metric_baseline_description: str | None = None
    preprocessing: Mapping[str, Any] | None = field(default=None, compare=False)

    def baseline_for(self, objective: str) -> tuple[float, str]:
        """The trivial predictor's value of ``objective`` (``val_loss`` or ``val_metric``)
        on the validation split, and the predictor in words."""
        if objective == "val_metric" and self.metric_baseline is not None:
            return self.metric_baseline, self.metric_baseline_description or ""
        return self.baseline, self.baseline_description


@dataclass(frozen=True)
class Split(Generic[A]):
    """One split: inputs, targets, and the valid steps of each sequence.

    ``lengths`` is int64 ``(N,)`` in ``[1, T]``, or None when every sequence has all ``T``
    steps; inputs and per-step targets are zero-padded past a sequence's length.
    """

    x: A
    y: A
    lengths: A | None = None

    def map(self, fn: Callable[[A], B]) -> Split[B]:
        """The same split with ``fn`` applied to every array."""
        return Split(fn(self.x), fn(self.y), None if self.lengths is None else fn(self.lengths))


@dataclass(frozen=True)
class TaskData(Generic[A]):
    """The train, validation and test splits of one task instance, with its metadata."""

    meta: TaskMeta
    train: Split[A]
    val: Split[A]
    test: Split[A]

    @classmethod
    def of(cls, meta: TaskMeta, splits: dict[str, Split[A]]) -> TaskData[A]:
        """Assemble from ``{"train": ..., "val": ..., "test": ...}``."""
        return cls(meta, splits["train"], splits["val"], splits["test"])

    def split(self, name: str) -> Split[A]:
        """The split called ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; splits: {', '.join(SPLITS)}")
        split: Split[A] = getattr(self, name)
        return split

    def map(self, fn: Callable[[A], B]) -> TaskData[B]:
        """The same data with ``fn`` applied to every array of every split."""
        return TaskData(self.meta, self.train.map(fn), self.val.map(fn), self.test.map(fn))


def to_tensors(data: TaskData[np.ndarray]) -> TaskData[Tensor]:
    """The same data as CPU tensors sharing the arrays' memory (torch imported here)."""
    import torch

    return data.map(lambda array: torch.from_numpy(np.ascontiguousarray(array)))
