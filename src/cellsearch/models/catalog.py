"""The cell catalog: an explicit dict from name to frozen :class:`CellSpec`.

No import-time registration: every entry is written out here, and this is the only
place in cellsearch that knows which cells exist. Each entry names its stack builder
through a loader defined below, a function whose body imports the torch module that
holds the cell (type checkers and readers follow it; torch is imported only when a
model is built, never by importing this module).
"""

from __future__ import annotations

from cellsearch.models.cell_spec import (
    FORGET_BIAS,
    RECURRENT_MAX,
    CellSpec,
    ParamCounts,
    StackBuilder,
)
from cellsearch.models.errors import UnknownCellError

__all__ = ["CELLS", "get_cell"]


# Loaders, one per cell: each imports its builder (and the cell class) when called.


def _lstm() -> StackBuilder:
    from cellsearch.models.factories import lstm_stack

    return lstm_stack


def _gru() -> StackBuilder:
    from cellsearch.models.factories import gru_stack

    return gru_stack


def _rnn_tanh() -> StackBuilder:
    from cellsearch.models.factories import rnn_tanh_stack

    return rnn_tanh_stack


def _rnn_relu() -> StackBuilder:
    from cellsearch.models.factories import rnn_relu_stack

    return rnn_relu_stack


def _lstm_peephole() -> StackBuilder:
    from cellsearch.models.custom import PeepholeLSTMCell
    from cellsearch.models.factories import cell_stack

    return cell_stack(PeepholeLSTMCell)


def _cifg() -> StackBuilder:
    from cellsearch.models.custom import CIFGCell
    from cellsearch.models.factories import cell_stack

    return cell_stack(CIFGCell)


def _mgu() -> StackBuilder:
    from cellsearch.models.custom import MGUCell
    from cellsearch.models.factories import cell_stack

    return cell_stack(MGUCell)


def _indrnn() -> StackBuilder:
    from cellsearch.models.custom import IndRNNCell
    from cellsearch.models.factories import cell_stack

    return cell_stack(IndRNNCell)


def _mingru() -> StackBuilder:
    from cellsearch.models.factories import cell_stack
    from cellsearch.models.minimal import MinGRUCell

    return cell_stack(MinGRUCell)


def _minlstm() -> StackBuilder:
    from cellsearch.models.factories import cell_stack
    from cellsearch.models.minimal import MinLSTMCell

    return cell_stack(MinLSTMCell)


_HC = ("h", "c")
_H = ("h",)

CELLS: dict[str, CellSpec] = {
    "lstm": CellSpec(
        name="lstm",
        title="Long short-term memory",
        description="Gates i, f, o = sigma(W x_t + U h_{t-1} + b) and candidate g = tanh(...); "
        "c_t = f * c_{t-1} + i * tanh(g); h_t = o * tanh(c_t). The memory cell c carries "
        "information across many steps. Fused torch.nn.LSTM.",
        reference="Hochreiter & Schmidhuber 1997",
        state_layout=_HC,
        fused=True,
        options=(FORGET_BIAS,),
        counts=ParamCounts(input=4, recurrent=4, vector=8),
        builder=_lstm,
    ),
    "gru": CellSpec(
        name="gru",
        title="Gated recurrent unit",
        description="r, z = sigma(W x_t + U h_{t-1} + b); "
        "n = tanh(W_n x_t + b_in + r * (U_n h_{t-1} + b_hn)); "
        "h_t = (1 - z) * n + z * h_{t-1}. No separate memory cell. torch.nn.GRU "
        "parameters; on CPU, training uses a hand-written recurrence that is faster than "
        "the fused kernel there and matches it to rounding.",
        reference="Cho et al. 2014",
        state_layout=_H,
        fused=True,
        options=(),
        counts=ParamCounts(input=3, recurrent=3, vector=6),
        builder=_gru,
    ),
    "rnn_tanh": CellSpec(
        name="rnn_tanh",
        title="Elman RNN (tanh)",
        description="h_t = tanh(W x_t + U h_{t-1} + b). The vanilla recurrent network; "
        "gradients vanish or explode over long sequences. Fused torch.nn.RNN.",
        reference="Elman 1990",
        state_layout=_H,
        fused=True,
        options=(),
        counts=ParamCounts(input=1, recurrent=1, vector=2),
        builder=_rnn_tanh,
    ),
    "rnn_relu": CellSpec(
        name="rnn_relu",
        title="Elman RNN (ReLU)",
        description="h_t = relu(W x_t + U h_{t-1} + b). Vanilla recurrence with a ReLU; "
        "unbounded activations, prone to explode. Fused torch.nn.RNN.",
        reference="Elman 1990; Le et al. 2015",
        state_layout=_H,
        fused=True,
        options=(),
        counts=ParamCounts(input=1, recurrent=1, vector=2),
        builder=_rnn_relu,
    ),
    "lstm_peephole": CellSpec(
        name="lstm_peephole",
        title="LSTM with peephole connections",
        description="LSTM whose gates also see the cell: i = sigma(.. + p_i * c_{t-1}), "
        "f = sigma(.. + p_f * c_{t-1}), c_t = f * c_{t-1} + i * tanh(g), "
        "o = sigma(.. + p_o * c_t), h_t = o * tanh(c_t); diagonal peepholes p (3 H extra).",
        reference="Gers & Schmidhuber 2000",
        state_layout=_HC,
        fused=False,
        options=(FORGET_BIAS,),
        counts=ParamCounts(input=4, recurrent=4, vector=7),
        builder=_lstm_peephole,
    ),
    "cifg": CellSpec(
        name="cifg",
        title="LSTM with coupled input and forget gates",
        description="LSTM with i_t = 1 - f_t: c_t = f * c_{t-1} + (1 - f) * tanh(g), "
        "h_t = o * tanh(c_t); a quarter fewer weights than the LSTM.",
        reference="Greff et al. 2017",
        state_layout=_HC,
        fused=False,
        options=(FORGET_BIAS,),
        counts=ParamCounts(input=3, recurrent=3, vector=3),
        builder=_cifg,
    ),
    "mgu": CellSpec(
        name="mgu",
        title="Minimal gated unit",
        description="f_t = sigma(W_f [h_{t-1}, x_t] + b_f); htilde_t = tanh(W_h [f_t * h_{t-1}, "
        "x_t] + b_h); h_t = (1 - f_t) * h_{t-1} + f_t * htilde_t. One gate.",
        reference="Zhou et al. 2016",
        state_layout=_H,
        fused=False,
        options=(),
        counts=ParamCounts(input=2, recurrent=2, vector=2),
        builder=_mgu,
    ),
    "indrnn": CellSpec(
        name="indrnn",
        title="Independently recurrent neural network",
        description="h_t = relu(W x_t + u * h_{t-1} + b) with u a vector (each unit recurs "
        "only on itself) and |u| clamped to recurrent_max (default 1.0).",
        reference="Li et al. 2018",
        state_layout=_H,
        fused=False,
        options=(RECURRENT_MAX,),
        counts=ParamCounts(input=1, recurrent=0, vector=2),
        builder=_indrnn,
    ),
    "mingru": CellSpec(
        name="mingru",
        title="Minimal GRU",
        description="z_t = sigma(Linear_z(x_t)); htilde_t = Linear_h(x_t); h_t = (1 - z_t) * "
        "h_{t-1} + z_t * g(htilde_t), g keeping h positive. Gates ignore h_{t-1}, so a "
        "sequence is one log-space parallel scan (Heinsen 2023), used off CPU; CPU training "
        "uses a chunked recurrence with a hand-written backward, which measured faster.",
        reference="Feng et al. 2024",
        state_layout=_H,
        fused=False,
        options=(),
        counts=ParamCounts(input=2, recurrent=0, vector=2),
        builder=_mingru,
    ),
    "minlstm": CellSpec(
        name="minlstm",
        title="Minimal LSTM",
        description="f_t = sigma(Linear_f(x_t)), i_t = sigma(Linear_i(x_t)), htilde_t = "
        "Linear_h(x_t); f' = f / (f + i), i' = i / (f + i); h_t = f' * h_{t-1} + i' * "
        "g(htilde_t). No cell state; log-space parallel scan off CPU, chunked recurrence on "
        "CPU.",
        reference="Feng et al. 2024",
        state_layout=_H,
        fused=False,
        options=(FORGET_BIAS,),
        counts=ParamCounts(input=3, recurrent=0, vector=3),
        builder=_minlstm,
    ),
}


def get_cell(name: str) -> CellSpec:
    """The spec registered under ``name``.

    Raises:
        UnknownCellError: ``name`` is not registered; the message lists the valid names.
    """
    try:
        return CELLS[name]
    except KeyError:
        raise UnknownCellError(name, CELLS) from None
