"""Errors raised by the search layer.

Hierarchy::

    SearchError
    ├── SpecError          a study spec breaks a rule or a server limit (carries field errors)
    ├── DatasetError       a data set is invalid or unavailable (an upload, a missing extra)
    ├── TrainingDiverged   the loss became NaN or inf: an outcome of the trial, not a bug
    ├── WorkerError        a worker cannot run (bad device, unusable storage)
    └── OptunaInternalsError  an Optuna internal the adapter relies on has moved
"""

from __future__ import annotations

from dataclasses import dataclass


class SearchError(Exception):
    """Base class of every error raised by ``cellsearch.search``."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of a study spec.

    Attributes:
        loc: Path of the field, e.g. ``("space", "hidden_size", "high")``.
        msg: What is wrong, in words a user can act on.
        type: A short machine-readable kind, e.g. ``"limit_exceeded"``.
    """

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, object]:
        """Return the shape FastAPI uses for validation errors."""
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


class SpecError(SearchError):
    """A study spec is invalid; ``errors`` names each field and reason."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))


class WorkerError(SearchError):
    """A worker cannot start or continue (e.g. an unavailable device)."""


class OptunaInternalsError(SearchError):
    """An Optuna internal that :mod:`cellsearch.search.optuna_adapter` relies on is missing or
    has another shape; the message names each one and the Optuna versions the adapter was
    tested against."""


class DatasetError(SearchError):
    """A data set is invalid or unavailable; the message names the problem."""


class TrainingDiverged(SearchError):
    """The loss became non-finite (nan or inf); an outcome of the trial, not a bug.

    Attributes:
        epoch: 1-based epoch in which it happened.
        reason: Human-readable cause, e.g. ``"train loss is nan at epoch 3, batch 12"``.
    """

    def __init__(self, epoch: int, reason: str) -> None:
        super().__init__(reason)
        self.epoch = epoch
        self.reason = reason
