"""SequenceModel (a recurrent stack plus a linear head) and parameter-count helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import Tensor, nn

from cellsearch.models.catalog import get_cell
from cellsearch.models.errors import ModelError

__all__ = ["SequenceModel", "count_parameters", "model_param_count", "solve_hidden_size"]

Head = Literal["last", "per_step"]


class SequenceModel(nn.Module):
    """A recurrent stack of any registered cell followed by ``Linear(hidden_size, output_size)``.

    ``head="last"`` reads the last valid step (classification, regression);
    ``head="per_step"`` reads every step (per-step outputs, forecasting).

    Args:
        cell: Registry name of the cell.
        input_size: Features per input step (I).
        hidden_size: Features of the hidden state (H).
        num_layers: Stacked recurrent layers.
        dropout: Dropout between recurrent layers.
        output_size: Outputs of the head (O).
        head: "last" or "per_step".
        cell_options: Cell-specific options (see ``CellSpec.options``).

    Raises:
        UnknownCellError: ``cell`` is not registered.
        UnknownOptionError: An option the cell does not define.
        ModelError: An unknown head.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        output_size: int = 1,
        head: Head = "last",
        cell_options: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        if head not in ("last", "per_step"):
            raise ModelError(f"unknown head {head!r}; valid heads: last, per_step")
        self.cell = cell
        self.head_kind: Head = head
        self.recurrent = get_cell(cell).build(
            input_size, hidden_size, num_layers, dropout, **dict(cell_options or {})
        )
        self.head = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Apply the model.

        Args:
            x: Input (B, T, I), padded at the end when ``lengths`` is given.
            lengths: Valid steps per sequence (B,), each in [1, T]; None means all T.

        Returns:
            (B, O) for ``head="last"``, (B, T, O) for ``head="per_step"``. Steps past a
            sequence's length are computed on padding and should be masked by the caller.
        """
        output, _ = self.recurrent(x)  # (B, T, H)
        if self.head_kind == "per_step":
            return self.head(output)  # (B, T, O)
        if lengths is None:
            return self.head(output[:, -1])  # (B, O)
        last = self._last_index(lengths, output.shape[1]).to(output.device)  # (B,)
        rows = torch.arange(output.shape[0], device=output.device)
        return self.head(output[rows, last])  # (B, O)

    @staticmethod
    def _last_index(lengths: Tensor, steps: int) -> Tensor:
        lengths = lengths.long()
        if lengths.dim() != 1 or bool((lengths < 1).any()) or bool((lengths > steps).any()):
            raise ModelError(f"lengths must be a 1-d tensor with values in [1, {steps}]")
        return lengths - 1


def count_parameters(module: nn.Module) -> int:
    """Number of scalars in every parameter of ``module``."""
    return sum(p.numel() for p in module.parameters())


def model_param_count(
    cell: str, input_size: int, hidden_size: int, num_layers: int, output_size: int
) -> int:
    """Parameters of a :class:`SequenceModel`: the cell stack plus the linear head."""
    stack = get_cell(cell).param_count(input_size, hidden_size, num_layers)
    return stack + hidden_size * output_size + output_size


def solve_hidden_size(
    cell: str,
    input_size: int,
    num_layers: int,
    output_size: int,
    param_budget: int,
    low: int = 1,
    high: int = 4096,
) -> int:
    """Hidden size in [low, high] whose model has the parameter count closest to a budget.

    The count grows strictly with the hidden size, so a bisection finds the first size
    at or above the budget; the answer is it or its predecessor, whichever is closer
    (the smaller one on a tie).

    Raises:
        ModelError: An empty range or a non-positive budget.
    """
    if low < 1 or high < low:
        raise ModelError(f"invalid hidden size range [{low}, {high}]")
    if param_budget < 1:
        raise ModelError(f"param_budget must be positive, got {param_budget}")

    def count(hidden: int) -> int:
        return model_param_count(cell, input_size, hidden, num_layers, output_size)

    lo, hi = low, high
    while lo < hi:  # first hidden size with count >= budget (or high)
        mid = (lo + hi) // 2
        if count(mid) >= param_budget:
            hi = mid
        else:
            lo = mid + 1
    if lo > low and param_budget - count(lo - 1) <= count(lo) - param_budget:
        return lo - 1
    return lo
