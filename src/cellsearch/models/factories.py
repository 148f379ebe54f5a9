"""Stack builders: the torch side of :class:`~cellsearch.models.cell_spec.StackBuilder`.

The catalog reaches these through its loaders, so torch is imported only when a model is
built. Every builder takes the state layout from the cell's spec: the layout is stated
once, in the catalog, and the stacks check it against what they run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from cellsearch.models.cell_spec import StackBuilder
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack, FusedStack, RecurrentCell, RecurrentStack

__all__ = ["cell_stack", "gru_stack", "lstm_stack", "rnn_relu_stack", "rnn_tanh_stack"]


def lstm_stack(
    state_layout: tuple[str, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    options: Mapping[str, float | None],
) -> RecurrentStack:
    """``lstm``: fused ``torch.nn.LSTM``; option ``forget_bias``."""
    lstm = nn.LSTM(
        input_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True
    )
    _set_fused_forget_bias(lstm, options.get("forget_bias"))
    return FusedStack(lstm, state_layout)


def gru_stack(
    state_layout: tuple[str, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    options: Mapping[str, float | None],
) -> RecurrentStack:
    """``gru``: ``torch.nn.GRU``'s parameters behind :class:`GRUStack`; no options."""
    gru = nn.GRU(input_size, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True)
    return GRUStack(gru, state_layout)


def rnn_tanh_stack(
    state_layout: tuple[str, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    options: Mapping[str, float | None],
) -> RecurrentStack:
    """``rnn_tanh``: fused ``torch.nn.RNN`` with tanh; no options."""
    return _elman("tanh", state_layout, input_size, hidden_size, num_layers, dropout)


def rnn_relu_stack(
    state_layout: tuple[str, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    options: Mapping[str, float | None],
) -> RecurrentStack:
    """``rnn_relu``: fused ``torch.nn.RNN`` with ReLU; no options."""
    return _elman("relu", state_layout, input_size, hidden_size, num_layers, dropout)


def _elman(
    nonlinearity: str,
    state_layout: tuple[str, ...],
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
) -> FusedStack:
    rnn = nn.RNN(
        input_size,
        hidden_size,
        num_layers=num_layers,
        nonlinearity=nonlinearity,
        dropout=dropout,
        batch_first=True,
    )
    return FusedStack(rnn, state_layout)


def _set_fused_forget_bias(lstm: nn.LSTM, value: float | None) -> None:
    """Forget slice of bias_ih to ``value`` and of bias_hh to 0, in every layer."""
    if value is None:
        return
    hidden = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_ih_l{layer}").data[hidden : 2 * hidden].fill_(value)
        getattr(lstm, f"bias_hh_l{layer}").data[hidden : 2 * hidden].zero_()


def cell_stack(cell: type[RecurrentCell]) -> StackBuilder:
    """Builder of a stack of custom cells of class ``cell``, one per layer.

    The cell's options go to every layer's constructor as keywords.
    """
    make: Callable[..., RecurrentCell] = cell  # options are keywords of the subclass

    def build(
        state_layout: tuple[str, ...],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        options: Mapping[str, float | None],
    ) -> RecurrentStack:
        sizes = [input_size] + [hidden_size] * (num_layers - 1)
        cells = [make(size, hidden_size, **options) for size in sizes]
        return CellStack(cells, state_layout, dropout)

    return build
