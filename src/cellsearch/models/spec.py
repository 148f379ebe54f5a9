"""Cell specs: the frozen description of one cell type and the factories behind them.

Everything that depends on which cell is used (constructor, state layout, options,
parameter count) lives in a :class:`CellSpec`; the registry in
:mod:`cellsearch.models.registry` maps names to specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn

from cellsearch.models.errors import UnknownOptionError
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack, FusedStack, RecurrentCell, RecurrentStack

__all__ = [
    "FORGET_BIAS",
    "RECURRENT_MAX",
    "CellOption",
    "CellSpec",
    "ParamCounts",
    "custom_factory",
    "fused_factory",
]

# build(input_size, hidden_size, num_layers, dropout, options) -> stack
StackFactory = Callable[[int, int, int, float, Mapping[str, float | None]], RecurrentStack]


@dataclass(frozen=True)
class CellOption:
    """A cell-specific hyperparameter with its suggested search range.

    Attributes:
        name: Keyword accepted by :meth:`CellSpec.build`, e.g. ``"forget_bias"``.
        description: One line for people.
        default: Value used when the option is not given; None leaves the cell's own
            initialisation (PyTorch's default where one exists).
        low: Lower end of the suggested search range.
        high: Upper end of the suggested search range.
        log: Whether the range is searched on a log scale.
    """

    name: str
    description: str
    default: float | None
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class ParamCounts:
    """Per-layer parameter count a H I + b H H + c H of a cell (closed form)."""

    input: int  # a: weights per (hidden unit, input feature)
    recurrent: int  # b: weights per (hidden unit, hidden unit)
    vector: int  # c: biases and other per-unit vectors per hidden unit


@dataclass(frozen=True)
class CellSpec:
    """Everything the rest of cellsearch knows about one cell type.

    Attributes:
        name: Registry key.
        title: Human name, e.g. "Long short-term memory".
        description: One paragraph with the equations, plain text.
        reference: Citation, e.g. "Hochreiter & Schmidhuber 1997".
        state_layout: Names of the state tensors, e.g. ``("h", "c")``.
        fused: Whether a fused torch kernel backs the cell.
        options: Cell-specific hyperparameters.
        counts: Coefficients of the per-layer parameter count.
        factory: Builds the stack from sizes and resolved options.
    """

    name: str
    title: str
    description: str
    reference: str
    state_layout: tuple[str, ...]
    fused: bool
    options: tuple[CellOption, ...]
    counts: ParamCounts = field(repr=False)
    factory: StackFactory = field(repr=False, compare=False)

    def param_count(self, input_size: int, hidden_size: int, num_layers: int) -> int:
        """Exact parameter count of the stack (all layers), in closed form.

        The first layer reads ``input_size`` features, the others ``hidden_size``.
        """
        h, k = hidden_size, self.counts
        inputs = input_size + (num_layers - 1) * hidden_size  # summed over layers
        return k.input * h * inputs + num_layers * (k.recurrent * h * h + k.vector * h)

    def build(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        **options: float | None,
    ) -> RecurrentStack:
        """Build the recurrent stack.

        Args:
            input_size: Features per input step (I).
            hidden_size: Features of the hidden state (H).
            num_layers: Stacked layers (L).
            dropout: Dropout between layers (not after the last).
            **options: Cell options by name; missing ones take their default.

        Raises:
            UnknownOptionError: An option the cell does not define.
        """
        valid = {option.name: option.default for option in self.options}
        for name in options:
            if name not in valid:
                raise UnknownOptionError(self.name, name, valid)
        resolved = {**valid, **options}
        return self.factory(input_size, hidden_size, num_layers, dropout, resolved)


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


FORGET_BIAS = CellOption(
    name="forget_bias",
    description="Initial forget-gate bias (Jozefowicz et al. 2015 recommend 1); "
    "None keeps the default initialisation",
    default=None,
    low=0.0,
    high=2.0,
)
RECURRENT_MAX = CellOption(
    name="recurrent_max",
    description="Bound on |u|, the diagonal recurrent weight; None means 1.0 "
    "(Li et al. 2018 derive bounds such as 2^(1/T))",
    default=None,
    low=0.5,
    high=2.0,
    log=True,
)
