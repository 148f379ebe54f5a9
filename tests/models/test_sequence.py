"""SequenceModel heads and lengths, cell options, and the error paths."""

from __future__ import annotations

import pytest
import torch

from cellsearch.models import (
    CELLS,
    ModelError,
    SequenceModel,
    UnknownCellError,
    UnknownOptionError,
    get_cell,
)
from cellsearch.models.custom import IndRNNCell
from cellsearch.models.layers import CellStack, RecurrentStack

N_IN, H, N_OUT = 3, 6, 2


def _indrnn_cells(stack: RecurrentStack) -> list[IndRNNCell]:
    assert isinstance(stack, CellStack)
    cells = [cell for cell in stack.cells if isinstance(cell, IndRNNCell)]
    assert len(cells) == len(stack.cells)
    return cells


@pytest.mark.parametrize("name", sorted(CELLS))
def test_heads_shapes_and_lengths(name: str) -> None:
    torch.manual_seed(0)
    last = SequenceModel(name, N_IN, H, num_layers=2, output_size=N_OUT).double()
    per_step = SequenceModel(name, N_IN, H, output_size=N_OUT, head="per_step").double()
    x = torch.randn(3, 7, N_IN, dtype=torch.float64)
    assert last(x).shape == (3, N_OUT)
    assert per_step(x).shape == (3, 7, N_OUT)
    lengths = torch.tensor([7, 2, 5])
    assert per_step(x, lengths).shape == (3, 7, N_OUT)
    padded = last(x, lengths)
    for row, length in enumerate(lengths.tolist()):
        alone = last(x[row : row + 1, :length])  # the sequence run alone, unpadded
        torch.testing.assert_close(padded[row], alone[0])


def test_last_without_lengths_is_last_step() -> None:
    model = SequenceModel("lstm", N_IN, H, output_size=N_OUT)
    x = torch.randn(2, 4, N_IN)
    torch.testing.assert_close(model(x), model(x, torch.tensor([4, 4])))


@pytest.mark.parametrize("lengths", [[0, 3], [5, 1], [[1, 2]]])
def test_bad_lengths(lengths: list[int]) -> None:
    model = SequenceModel("gru", N_IN, H)
    with pytest.raises(ModelError):
        model(torch.randn(2, 4, N_IN), torch.tensor(lengths))


def test_unknown_cell_lists_valid_names() -> None:
    with pytest.raises(UnknownCellError) as info:
        get_cell("transformer")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, ModelError)
    for name in CELLS:
        assert name in str(info.value)
    with pytest.raises(UnknownCellError):
        SequenceModel("lstmm", N_IN, H)


def test_unknown_option_names_option_and_valid_ones() -> None:
    with pytest.raises(UnknownOptionError) as info:
        get_cell("lstm").build(N_IN, H, forget_bais=1.0)
    assert "forget_bais" in str(info.value) and "forget_bias" in str(info.value)
    with pytest.raises(ModelError, match="none"):
        SequenceModel("gru", N_IN, H, cell_options={"forget_bias": 1.0})


def test_unknown_head() -> None:
    with pytest.raises(ModelError):
        SequenceModel("gru", N_IN, H, head="first")  # type: ignore[arg-type]


@pytest.mark.parametrize("num_layers", [1, 3])
def test_fused_forget_bias(num_layers: int) -> None:
    stack = get_cell("lstm").build(N_IN, H, num_layers, forget_bias=1.5)
    rnn = stack.rnn
    for layer in range(num_layers):
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
        torch.testing.assert_close(b_ih[H : 2 * H] + b_hh[H : 2 * H], torch.full((H,), 1.5))
        assert bool((b_hh[H : 2 * H] == 0).all())
        assert not bool((b_ih[:H] == 1.5).any())  # other gates keep torch's init


@pytest.mark.parametrize(("name", "gate"), [("lstm_peephole", 1), ("cifg", 0), ("minlstm", 0)])
def test_custom_forget_bias(name: str, gate: int) -> None:
    stack = get_cell(name).build(N_IN, H, 2, forget_bias=2.0)
    assert isinstance(stack, CellStack)
    for cell in stack.cells:
        bias = cell.get_parameter("bias")
        torch.testing.assert_close(bias[gate * H : (gate + 1) * H], torch.full((H,), 2.0))


def test_default_options_leave_torch_init() -> None:
    torch.manual_seed(0)
    ours = get_cell("lstm").build(N_IN, H)
    torch.manual_seed(0)
    plain = torch.nn.LSTM(N_IN, H, batch_first=True)
    for a, b in zip(ours.parameters(), plain.parameters(), strict=True):
        assert torch.equal(a, b)


def test_indrnn_recurrent_max_default_and_option() -> None:
    assert _indrnn_cells(get_cell("indrnn").build(N_IN, H))[0].recurrent_max == 1.0
    stack = get_cell("indrnn").build(N_IN, H, 2, recurrent_max=0.25)
    for cell in _indrnn_cells(stack):
        assert cell.recurrent_max == 0.25
        assert bool((cell.recurrent_weight().abs() <= 0.25).all())


def test_specs_are_complete() -> None:
    for name, spec in CELLS.items():
        assert spec.name == name
        assert spec.title and spec.description and spec.reference
        assert spec.state_layout[0] == "h"
        for option in spec.options:
            assert option.low < option.high
            assert option.default is None or option.low <= option.default <= option.high
