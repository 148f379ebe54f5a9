"""What one trial trains: the model's configuration and the training's (plain types).

:func:`cellsearch.search.trial.space.suggest_config` samples both from a study spec; the
model is built from :class:`ModelConfig` and trained with :class:`TrainConfig`. The
optimizer and precision names are defined here and offered by the spec. Neither torch
nor pydantic is imported, so the trainer runs where only torch is installed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

OptimizerName = Literal["adam", "adamw", "sgd", "rmsprop"]
"""The optimizers a trial can train with (the trainer builds each)."""
OPTIMIZERS: tuple[OptimizerName, ...] = get_args(OptimizerName)
Precision = Literal["fp32", "bf16"]
"""``bf16`` runs the forward pass under bfloat16 autocast on CUDA (ignored on CPU)."""
PRECISIONS: tuple[Precision, ...] = get_args(Precision)


@dataclass(frozen=True)
class ModelConfig:
    """The recurrent model of one trial (see :class:`cellsearch.models.SequenceModel`)."""

    cell_type: str
    hidden_size: int
    num_layers: int = 1
    dropout: float = 0.0
    cell_options: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters of one trial.

    Attributes:
        learning_rate: Optimizer step size.
        batch_size: Training sequences per step (the last batch of an epoch may be smaller).
        max_epochs: Upper bound on the number of epochs.
        optimizer: ``adam``, ``adamw`` (decoupled weight decay), ``sgd`` (plain, no
            momentum) or ``rmsprop``.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        grad_clip: Maximum global gradient norm, or None for no clipping.
        max_seconds: Wall-clock limit; training stops after the epoch that crosses it.
        seed: Seed of everything random in training (dropout, batch order).
        precision: ``fp32``, or ``bf16`` for the forward pass under bfloat16 autocast on
            CUDA (ignored on CPU, where the run says so in its notes).
    """

    learning_rate: float
    batch_size: int
    max_epochs: int
    optimizer: OptimizerName = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    max_seconds: float | None = None
    seed: int = 0
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        checks = {
            "learning_rate must be > 0": self.learning_rate > 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "max_epochs must be >= 1": self.max_epochs >= 1,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "grad_clip must be > 0 or None": self.grad_clip is None or self.grad_clip > 0,
            "max_seconds must be > 0 or None": self.max_seconds is None or self.max_seconds > 0,
            f"unknown optimizer {self.optimizer!r}": self.optimizer in OPTIMIZERS,
            f"unknown precision {self.precision!r}": self.precision in PRECISIONS,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError("; ".join(failed))


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial trains: its model and its training."""

    model: ModelConfig
    train: TrainConfig
