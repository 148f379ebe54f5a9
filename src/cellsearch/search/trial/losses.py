"""Losses of a batch, masked past each sequence's length: what the trainer minimises and
reports.

A *unit* of a mean loss is one target element for ``mse``, one target for
``cross_entropy`` and one step for ``bce`` (whose loss sums the step's outputs). Masked
positions are excluded with ``torch.where``, not a product, since padding may hold inf.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _unreduced_loss(prediction: Tensor, target: Tensor, loss: str) -> Tensor:
    """Loss per unit: per element for mse, per target for cross_entropy, per step for bce."""
    if loss == "mse":
        return F.mse_loss(prediction, target, reduction="none")  # like target
    if loss == "bce":
        nll = F.binary_cross_entropy_with_logits(prediction, target, reduction="none")
        return nll.sum(dim=-1)  # (B, T): summed over the O outputs of a step
    scores = prediction.reshape(-1, prediction.shape[-1])  # (B*T, C) or (B, C)
    return F.cross_entropy(scores, target.reshape(-1), reduction="none").reshape(target.shape)


def loss_units(target: Tensor, loss: str, mask: Tensor | None = None) -> Tensor:
    """Number of units a mean loss divides by (valid steps only when ``mask`` is given).

    A unit is one target element for ``mse``, one target for ``cross_entropy`` and one
    step for ``bce`` (whose loss sums the step's outputs).
    """
    per_step = target.shape[-1] if loss == "bce" else 1
    if mask is None:
        return torch.tensor(target.numel() // per_step)
    elements_per_step = target.numel() // (mask.numel() * per_step)
    return mask.sum() * elements_per_step


def batch_loss(
    prediction: Tensor,
    target: Tensor,
    loss: str,
    reduction: str = "mean",
    mask: Tensor | None = None,
) -> Tensor:
    """Loss of a batch, averaged over its units (see :func:`loss_units`) or summed.

    Args:
        prediction: ``(B, O)`` for a last-step head, ``(B, T, O)`` for a per-step head.
        target: Shaped as documented on :class:`~cellsearch.search.tasks.TaskData`.
        loss: ``mse``, ``cross_entropy`` or ``bce``.
        reduction: ``mean`` or ``sum``.
        mask: ``(B, T)``, True on the valid steps of per-step targets; None means all.
    """
    if mask is None and loss == "mse":
        return F.mse_loss(prediction, target, reduction=reduction)
    if mask is None and loss == "cross_entropy":
        scores = prediction.reshape(-1, prediction.shape[-1])  # (B*T, C) or (B, C)
        return F.cross_entropy(scores, target.reshape(-1), reduction=reduction)
    values = _unreduced_loss(prediction, target, loss)
    if mask is not None:
        mask = mask.reshape(mask.shape + (1,) * (values.dim() - mask.dim()))
        values = torch.where(mask, values, 0.0)  # not a product: padding may hold inf
    total = values.sum()
    if reduction == "sum":
        return total
    return total / loss_units(target, loss, mask).to(total.device)
