"""Generic recurrent layers: the cell contract and the stacks built from it.

Every cell, fused or custom, ends up behind one contract::

    stack(x, state) -> (output, state)      x (B, T, I), output (B, T, H)

where ``state`` is always a tuple of tensors of shape (num_layers, B, H), one per entry
of the cell's state layout (``("h", "c")`` for LSTM-like cells, ``("h",)`` otherwise).
The layout is stated once, by the cell's spec in the catalog; stacks receive it when
built. Code outside the catalog never needs to know which cell it holds.

Custom cells subclass :class:`RecurrentCell`: they compute the input projections of the
whole sequence in one matmul (:meth:`RecurrentCell.project`) and then advance the state
one step at a time with only the recurrent work inside the loop (:meth:`RecurrentCell.step`).
:class:`CellStack` stacks such cells; :class:`FusedStack` wraps ``torch.nn.LSTM/GRU/RNN``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cellsearch.models.errors import StateError

__all__ = ["CellStack", "FusedStack", "RecurrentCell", "RecurrentStack", "State"]

State = tuple[Tensor, ...]


class RecurrentCell(nn.Module, ABC):
    """One layer of a custom recurrent cell.

    Subclasses create their parameters in ``__init__``, then call :meth:`reset_parameters`.
    ``state[0]`` is always the hidden state h, which is also the layer's output.

    Args:
        input_size: Features per step of the layer's input (I).
        hidden_size: Features of the hidden state (H).
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def reset_parameters(self) -> None:
        """Initialise every parameter from U(-1/sqrt(H), 1/sqrt(H)), as torch's RNNs do."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @abstractmethod
    def project(self, x: Tensor) -> Tensor:
        """Input projections of every step at once.

        Args:
            x: Input of shape (B, T, I).

        Returns:
            Projections of shape (B, T, G), G being cell specific.
        """

    @abstractmethod
    def step(self, gx: Tensor, state: State) -> State:
        """Advance the state by one step.

        Args:
            gx: This step's input projection, (B, G).
            state: The previous state, a tuple of (B, H) tensors.

        Returns:
            The new state; its first tensor is the step's output h.
        """

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the cell over a sequence (the sequential reference form).

        Args:
            x: Input of shape (B, T, I).
            state: Initial state, a tuple of (B, H) tensors.

        Returns:
            Output (B, T, H) and the final state.
        """
        gx = self.project(x)  # (B, T, G): one matmul for every step
        outputs = []
        for gx_t in gx.unbind(1):  # unbind: one backward node, not T full-size zero grads
            state = self.step(gx_t, state)
            outputs.append(state[0])
        return torch.stack(outputs, 1), state  # (B, T, H)


class RecurrentStack(nn.Module, ABC):
    """A stack of recurrent layers with the state always passed as a tuple.

    Args:
        state_layout: Names of the state tensors, e.g. ``("h", "c")``.
        hidden_size: Features of the hidden state (H).
        num_layers: Number of stacked layers (L).
        dropout: Dropout probability between layers (not after the last), as in nn.LSTM.
    """

    def __init__(
        self, state_layout: tuple[str, ...], hidden_size: int, num_layers: int, dropout: float
    ) -> None:
        super().__init__()
        self.state_layout = state_layout
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout

    def initial_state(
        self,
        batch_size: int,
        *,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> State:
        """Zero state: one (L, B, H) tensor per entry of the state layout."""
        shape = (self.num_layers, batch_size, self.hidden_size)
        return tuple(torch.zeros(shape, device=device, dtype=dtype) for _ in self.state_layout)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run the stack.

        Args:
            x: Input of shape (B, T, I).
            state: Initial state (a tuple of (L, B, H) tensors) or None for zeros.

        Returns:
            Output of the last layer (B, T, H) and the final state, same layout as ``state``.
        """
        if state is None:
            state = self.initial_state(x.shape[0], device=x.device, dtype=x.dtype)
        self._check_state(state, x.shape[0])
        return self._run(x, tuple(state))

    def _check_state(self, state: State, batch_size: int) -> None:
        expected = (self.num_layers, batch_size, self.hidden_size)
        if not isinstance(state, tuple) or len(state) != len(self.state_layout):
            raise StateError(
                f"state must be a tuple of {len(self.state_layout)} tensors "
                f"{self.state_layout}, got {type(state).__name__}"
            )
        for name, tensor in zip(self.state_layout, state, strict=True):
            if tuple(tensor.shape) != expected:
                raise StateError(
                    f"state {name!r} has shape {tuple(tensor.shape)}, expected {expected}"
                )

    @abstractmethod
    def _run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the layers on a validated state."""


class CellStack(RecurrentStack):
    """A stack of custom :class:`RecurrentCell` layers.

    Args:
        cells: One cell per layer; the first takes the input size, the rest H.
        state_layout: Names of the state tensors.
        dropout: Dropout probability between layers.
    """

    def __init__(
        self, cells: Sequence[RecurrentCell], state_layout: tuple[str, ...], dropout: float = 0.0
    ) -> None:
        super().__init__(state_layout, cells[0].hidden_size, len(cells), dropout)
        self.cells = nn.ModuleList(cells)

    def _run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        finals: list[State] = []
        for index, module in enumerate(self.cells):
            cell = cast(RecurrentCell, module)
            if index > 0 and self.dropout > 0.0:
                x = F.dropout(x, self.dropout, self.training)
            layer_state = tuple(s[index] for s in state)  # each (B, H)
            x, layer_final = cell.run(x, layer_state)  # x: (B, T, H)
            finals.append(layer_final)
        new_state = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))  # (L, B, H)
        return x, new_state


class FusedStack(RecurrentStack):
    """A stack backed by a fused ``torch.nn.LSTM``, ``GRU`` or ``RNN`` (batch first).

    Args:
        rnn: The fused module; its ``num_layers`` and ``dropout`` define the stack.
        state_layout: The cell spec's layout: two names (h, c) for an LSTM, one otherwise.

    Raises:
        ValueError: A module that is not batch first and unidirectional, or a layout
            whose length is not the module's number of state tensors.
    """

    def __init__(self, rnn: nn.RNNBase, state_layout: tuple[str, ...]) -> None:
        super().__init__(state_layout, rnn.hidden_size, rnn.num_layers, rnn.dropout)
        if not rnn.batch_first or rnn.bidirectional:
            raise ValueError("FusedStack needs a batch-first, unidirectional module")
        tensors = 2 if isinstance(rnn, nn.LSTM) else 1  # (h, c) or h
        if len(state_layout) != tensors:
            raise ValueError(
                f"{type(rnn).__name__} carries {tensors} state tensor(s), "
                f"layout {state_layout} names {len(state_layout)}"
            )
        self.rnn = rnn

    def _run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if len(state) == 2:
            output, (h, c) = self.rnn(x, state)
            return output, (h, c)
        output, h_n = self.rnn(x, state[0])
        return output, (h_n,)
