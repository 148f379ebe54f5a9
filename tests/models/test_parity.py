"""Parity with torch's fused kernels (weights copied in; max difference < 1e-5, relative above 1).

* The generic layer (the code path of every custom cell) reproduces nn.LSTM and nn.GRU.
* The ``gru`` registry entry's CPU training path reproduces nn.GRU.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from cellsearch.models import get_cell
from cellsearch.models.custom import GRUCell, LSTMCell
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack

ATOL = 1e-5
INPUT, HIDDEN, BATCH, STEPS = 6, 8, 4, 13


def _assert_close(a: Tensor, b: Tensor) -> None:
    # relative above magnitude 1: float32 carries ~7 digits, and gradients reach ~100
    scale = max(1.0, b.abs().max().item())
    assert (a - b).abs().max().item() < ATOL * scale


def _grads(loss: Tensor, tensors: list[Tensor]) -> tuple[Tensor, ...]:
    return torch.autograd.grad(loss, tensors)


def _generic_lstm(fused: nn.LSTM) -> CellStack:
    cells = []
    for layer in range(fused.num_layers):
        cell = LSTMCell(fused.input_size if layer == 0 else fused.hidden_size, fused.hidden_size)
        with torch.no_grad():
            cell.weight_ih.copy_(getattr(fused, f"weight_ih_l{layer}"))
            cell.weight_hh.copy_(getattr(fused, f"weight_hh_l{layer}"))
            cell.bias.copy_(
                getattr(fused, f"bias_ih_l{layer}") + getattr(fused, f"bias_hh_l{layer}")
            )
        cells.append(cell)
    return CellStack(cells, get_cell("lstm").state_layout)


def _generic_gru(fused: nn.GRU) -> CellStack:
    cells = []
    for layer in range(fused.num_layers):
        cell = GRUCell(fused.input_size if layer == 0 else fused.hidden_size, fused.hidden_size)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(cell, name).copy_(getattr(fused, f"{name}_l{layer}"))
        cells.append(cell)
    return CellStack(cells, get_cell("gru").state_layout)


def _inputs(num_layers: int, n_state: int) -> tuple[Tensor, tuple[Tensor, ...]]:
    x = torch.randn(BATCH, STEPS, INPUT, requires_grad=True)
    state = tuple(
        torch.randn(num_layers, BATCH, HIDDEN, requires_grad=True) for _ in range(n_state)
    )
    return x, state


@pytest.mark.parametrize("num_layers", [1, 2])
def test_generic_lstm_matches_nn_lstm(num_layers: int) -> None:
    torch.manual_seed(0)
    fused = nn.LSTM(INPUT, HIDDEN, num_layers, batch_first=True)
    generic = _generic_lstm(fused)
    x, (h0, c0) = _inputs(num_layers, 2)
    out_f, (h_f, c_f) = fused(x, (h0, c0))
    out_g, (h_g, c_g) = generic(x, (h0, c0))
    for a, b in ((out_f, out_g), (h_f, h_g), (c_f, c_g)):
        _assert_close(a, b)
    loss_f = (out_f * out_f).sum() + h_f.sum() + 2 * c_f.sum()
    loss_g = (out_g * out_g).sum() + h_g.sum() + 2 * c_g.sum()
    grads_f = _grads(loss_f, [x, h0, c0, *fused.parameters()])
    grads_g = _grads(loss_g, [x, h0, c0, *generic.parameters()])
    _assert_close_all(grads_f[:3], grads_g[:3])
    # fused per layer: w_ih, w_hh, b_ih, b_hh; generic per layer: w_ih, bias, w_hh
    for layer in range(num_layers):
        w_ih, w_hh, b_ih, b_hh = grads_f[3 + 4 * layer : 7 + 4 * layer]
        g_w_ih, g_bias, g_w_hh = grads_g[3 + 3 * layer : 6 + 3 * layer]
        _assert_close_all((w_ih, w_hh, b_ih, b_hh), (g_w_ih, g_w_hh, g_bias, g_bias))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_generic_gru_matches_nn_gru(num_layers: int) -> None:
    torch.manual_seed(1)
    fused = nn.GRU(INPUT, HIDDEN, num_layers, batch_first=True)
    generic = _generic_gru(fused)
    x, (h0,) = _inputs(num_layers, 1)
    out_f, h_f = fused(x, h0)
    out_g, (h_g,) = generic(x, (h0,))
    _assert_close(out_f, out_g)
    _assert_close(h_f, h_g)
    grads_f = _grads((out_f * out_f).sum() + h_f.sum(), [x, h0, *fused.parameters()])
    grads_g = _grads((out_g * out_g).sum() + h_g.sum(), [x, h0, *generic.parameters()])
    _assert_close_all(grads_f, grads_g)  # same parameter order: w_ih, w_hh, b_ih, b_hh


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("num_layers", "steps"), [(1, 1), (1, 13), (3, 40)])
def test_gru_cpu_path_matches_nn_gru(num_layers: int, steps: int, dtype: torch.dtype) -> None:
    torch.manual_seed(2)
    stack = get_cell("gru").build(INPUT, HIDDEN, num_layers).to(dtype)
    assert isinstance(stack, GRUStack)
    x = torch.randn(BATCH, steps, INPUT, dtype=dtype, requires_grad=True)
    h0 = torch.randn(num_layers, BATCH, HIDDEN, dtype=dtype, requires_grad=True)
    assert stack._use_cpu_path(x)
    out_c, (h_c,) = stack(x, (h0,))
    out_f, h_f = stack.rnn(x, h0)  # the fused kernel, same parameters
    _assert_close(out_c, out_f)
    _assert_close(h_c, h_f)
    params = list(stack.rnn.parameters())
    grads_c = _grads((out_c * out_c).sum() + 3 * h_c.sum(), [x, h0, *params])
    grads_f = _grads((out_f * out_f).sum() + 3 * h_f.sum(), [x, h0, *params])
    _assert_close_all(grads_c, grads_f)


def test_gru_uses_fused_kernel_without_grad() -> None:
    stack = get_cell("gru").build(INPUT, HIDDEN)
    assert isinstance(stack, GRUStack)
    x = torch.randn(BATCH, STEPS, INPUT)
    with torch.no_grad():
        assert not stack._use_cpu_path(x)
        out, _ = stack(x)
    torch.testing.assert_close(out, stack(x)[0], atol=ATOL, rtol=0)


def _assert_close_all(a: tuple[Tensor, ...], b: tuple[Tensor, ...]) -> None:
    assert len(a) == len(b)
    for left, right in zip(a, b, strict=True):
        _assert_close(left, right)
