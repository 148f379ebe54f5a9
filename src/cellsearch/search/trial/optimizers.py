"""The optimizers a trial can train with, and a process's one-time warm-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from cellsearch.search.trial_config import OPTIMIZERS, OptimizerName, TrainConfig


def _adam(params: Iterable[Tensor], config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused or None
    )


def _adamw(params: Iterable[Tensor], config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused or None
    )


def _sgd(params: Iterable[Tensor], config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)


def _rmsprop(params: Iterable[Tensor], config: TrainConfig, fused: bool) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(params, lr=config.learning_rate, weight_decay=config.weight_decay)


_BUILDERS: dict[
    OptimizerName, Callable[[Iterable[Tensor], TrainConfig, bool], torch.optim.Optimizer]
] = {
    "adam": _adam,
    "adamw": _adamw,
    "sgd": _sgd,
    "rmsprop": _rmsprop,
}


def make_optimizer(
    model: nn.Module, config: TrainConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Build the configured optimizer (fused Adam/AdamW kernels on CUDA)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return _BUILDERS[config.optimizer](params, config, device.type == "cuda")


def warm_up(device: torch.device) -> None:
    """Pay a process's one-time training costs before its first trial.

    The first optimizer a process builds imports a large part of ``torch._dynamo`` (over a
    second on a small CPU), and the first step of each kind selects kernels; run inside a
    trial, that time is charged to the trial's ``seconds`` and ``seconds_per_epoch``. A
    worker calls this once at start-up, with each optimizer stepping a one-weight layer.
    """
    layer = nn.Linear(1, 1).to(device)
    for name in OPTIMIZERS:
        config = TrainConfig(learning_rate=1e-3, batch_size=1, max_epochs=1, optimizer=name)
        optimizer = make_optimizer(layer, config, device)
        layer(torch.ones(1, 1, device=device)).sum().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
