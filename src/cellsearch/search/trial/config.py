"""What one trial trains: the model's configuration and the training's (no torch here).

:func:`cellsearch.search.trial.space.suggest_config` samples both from a study spec; the
model is built from :class:`ModelConfig` and trained with :class:`TrainConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cellsearch.search.study.spec import OPTIMIZERS, OptimizerName


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
    """

    learning_rate: float
    batch_size: int
    max_epochs: int
    optimizer: OptimizerName = "adam"
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    max_seconds: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "learning_rate must be > 0": self.learning_rate > 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "max_epochs must be >= 1": self.max_epochs >= 1,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "grad_clip must be > 0 or None": self.grad_clip is None or self.grad_clip > 0,
            "max_seconds must be > 0 or None": self.max_seconds is None or self.max_seconds > 0,
            f"unknown optimizer {self.optimizer!r}": self.optimizer in OPTIMIZERS,
        }
        failed = [message for message, ok in checks.items() if not ok]
        if failed:
            raise ValueError("; ".join(failed))


@dataclass(frozen=True)
class TrialConfig:
    """Everything one trial trains: its model and its training."""

    model: ModelConfig
    train: TrainConfig
