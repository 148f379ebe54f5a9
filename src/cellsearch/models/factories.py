"""Factories that build recurrent stacks (these import torch; the registry loads them lazily)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from torch import nn

from cellsearch.models.cell_spec import StackFactory
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack, FusedStack, RecurrentCell, RecurrentStack


def fused_factory(kind: str) -> StackFactory:
    """Factory for a fused torch RNN: kind is "lstm", "gru", "rnn_tanh" or "rnn_relu"."""

    def build(
        input_size: int,
        hidden: int,
        layers: int,
        dropout: float,
        options: Mapping[str, float | None],
    ) -> RecurrentStack:
        kwargs = {"num_layers": layers, "dropout": dropout, "batch_first": True}
        if kind == "gru":
            return GRUStack(nn.GRU(input_size, hidden, **kwargs))
        if kind == "lstm":
            lstm = nn.LSTM(input_size, hidden, **kwargs)
            _set_fused_forget_bias(lstm, options.get("forget_bias"))
            return FusedStack(lstm, ("h", "c"))
        rnn = nn.RNN(input_size, hidden, nonlinearity=kind.removeprefix("rnn_"), **kwargs)
        return FusedStack(rnn, ("h",))

    return build


def _set_fused_forget_bias(lstm: nn.LSTM, value: float | None) -> None:
    """Forget slice of bias_ih to ``value`` and of bias_hh to 0, in every layer."""
    if value is None:
        return
    hidden = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_ih_l{layer}").data[hidden : 2 * hidden].fill_(value)
        getattr(lstm, f"bias_hh_l{layer}").data[hidden : 2 * hidden].zero_()


def custom_factory(
    cell: Callable[..., RecurrentCell], state_layout: tuple[str, ...]
) -> StackFactory:
    """Factory for a stack of custom cells; options go to every layer's constructor."""

    def build(
        input_size: int,
        hidden: int,
        layers: int,
        dropout: float,
        options: Mapping[str, float | None],
    ) -> RecurrentStack:
        sizes = [input_size] + [hidden] * (layers - 1)
        return CellStack([cell(size, hidden, **options) for size in sizes], state_layout, dropout)

    return build
