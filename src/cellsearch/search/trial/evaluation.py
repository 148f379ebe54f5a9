"""A task's splits on the training device, and the evaluation of a model on one.

Data are moved to the device once per run (:func:`move_splits`); evaluation runs in eval
mode, without gradients, in batches as large as the sequences' length allows, and gives
the split's mean loss and metric (accuracy where the task's metric is accuracy, else the
loss), per-step targets masked past each sequence's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cellsearch.search.tasks.data import SPLITS, Split, TaskData, TaskMeta
from cellsearch.search.trial.losses import batch_loss, loss_units

_EVAL_STEPS_PER_BATCH = 2**19
"""Evaluation batches hold at most about this many time steps (sequences x T)."""
_MAX_EVAL_BATCH = 1024


@dataclass(frozen=True)
class DeviceSplit:
    """Inputs and targets of one split, already on the training device.

    Attributes:
        lengths: Valid steps per sequence ``(N,)``, or None for fixed length.
        mask: ``(N, T)`` valid steps of per-step targets, or None when every step counts.
        units: Loss units of the whole split (the divisor of its mean loss).
    """

    x: Tensor
    y: Tensor
    lengths: Tensor | None = None
    mask: Tensor | None = None
    units: float = 0.0

    def predict(self, model: nn.Module, idx: Tensor | slice) -> Tensor:
        """The model's predictions for the sequences ``idx`` of this split."""
        if self.lengths is None:
            return model(self.x[idx])
        return model(self.x[idx], self.lengths[idx])

    def batch_mask(self, idx: Tensor | slice) -> Tensor | None:
        """The step mask of the sequences ``idx``, or None."""
        return None if self.mask is None else self.mask[idx]

    @property
    def size(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class Evaluation:
    loss: float
    metric: float


def eval_batch_size(split: DeviceSplit, batch_size: int) -> int:
    steps = max(1, split.x.shape[1])
    return max(batch_size, min(_MAX_EVAL_BATCH, _EVAL_STEPS_PER_BATCH // steps))


@torch.inference_mode()
def evaluate(
    model: nn.Module, split: DeviceSplit, data: TaskData[Tensor], batch_size: int
) -> Evaluation:
    """Mean loss and metric of the model on a split (eval mode, large batches)."""
    model.eval()
    loss_sum = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device)
    step = eval_batch_size(split, batch_size)
    for start in range(0, split.size, step):
        rows = slice(start, start + step)
        prediction = split.predict(model, rows)
        target, mask = split.y[rows], split.batch_mask(rows)
        loss_sum += batch_loss(prediction, target, data.meta.loss, reduction="sum", mask=mask)
        if data.meta.metric == "accuracy":
            hits = prediction.argmax(dim=-1) == target  # (B,) or (B, T)
            correct += (hits if mask is None else hits & mask).sum()
    total_loss, total_correct = torch.stack([loss_sum, correct]).tolist()
    loss = total_loss / split.units
    metric = total_correct / split.units if data.meta.metric == "accuracy" else loss
    return Evaluation(loss=loss, metric=metric)


def move_split(split: Split[Tensor], meta: TaskMeta, device: torch.device) -> DeviceSplit:
    x, y = split.x.to(device), split.y.to(device)
    lengths, mask = split.lengths, None
    if lengths is not None:
        lengths = lengths.to(device)
        if meta.head == "per_step":
            mask = torch.arange(x.shape[1], device=device) < lengths[:, None]  # (N, T)
    return DeviceSplit(x, y, lengths, mask, float(loss_units(y, meta.loss, mask)))


def move_splits(data: TaskData[Tensor], device: torch.device) -> dict[str, DeviceSplit]:
    """Move the task's tensors to the training device, once."""
    return {name: move_split(data.split(name), data.meta, device) for name in SPLITS}
