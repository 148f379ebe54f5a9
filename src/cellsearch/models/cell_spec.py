"""Cell specs: the frozen description of one cell type (importable without torch).

Everything that depends on which cell is used (how its stack is built, state layout,
options, parameter count) lives in a :class:`CellSpec`; the catalog in
:mod:`cellsearch.models.catalog` maps names to specs.

A spec states its cell's state layout; the :class:`StackBuilder` receives it from there,
so neither the stacks nor the cells restate it. The builder itself lives in a torch
module and is reached through a loader (a function that imports it when called), so that
this module, the catalog and the API process that serves them never import torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cellsearch.models.errors import UnknownOptionError

if TYPE_CHECKING:  # torch is imported only when a model is built
    from cellsearch.models.layers import RecurrentStack

__all__ = [
    "FORGET_BIAS",
    "RECURRENT_MAX",
    "CellOption",
    "CellSpec",
    "ParamCounts",
    "StackBuilder",
]


class StackBuilder(Protocol):
    """Builds the recurrent stack of one cell type (implementations import torch)."""

    def __call__(
        self,
        state_layout: tuple[str, ...],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        options: Mapping[str, float | None],
    ) -> RecurrentStack:
        """Build the stack.

        Args:
            state_layout: The spec's state layout, which the stack adopts.
            input_size: Features per input step (I).
            hidden_size: Features of the hidden state (H).
            num_layers: Stacked layers (L).
            dropout: Dropout between layers (not after the last).
            options: Every option of the cell, resolved (defaults filled in).
        """
        ...


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
        builder: Loader of the :class:`StackBuilder`: imports the torch module that
            defines it and returns it (a function, not a string, so that type checkers
            and readers follow it to the cell's code).
    """

    name: str
    title: str
    description: str
    reference: str
    state_layout: tuple[str, ...]
    fused: bool
    options: tuple[CellOption, ...]
    counts: ParamCounts = field(repr=False)
    builder: Callable[[], StackBuilder] = field(repr=False, compare=False)

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
        build_stack = self.builder()  # imports torch on the first build
        return build_stack(
            self.state_layout, input_size, hidden_size, num_layers, dropout, resolved
        )


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
