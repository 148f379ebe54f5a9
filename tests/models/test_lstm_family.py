"""The CPU training paths of lstm_peephole and cifg against the cells' autograd form."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from cellsearch.models import get_cell
from cellsearch.models.custom import CIFGCell, PeepholeLSTMCell
from cellsearch.models.layers import CellStack

INPUT, HIDDEN, BATCH = 5, 7, 3
CELLS: dict[str, type[PeepholeLSTMCell] | type[CIFGCell]] = {
    "lstm_peephole": PeepholeLSTMCell,
    "cifg": CIFGCell,
}


def _stack(name: str, num_layers: int, dtype: torch.dtype) -> CellStack:
    torch.manual_seed(num_layers)
    stack = get_cell(name).build(INPUT, HIDDEN, num_layers, forget_bias=1.0)
    assert isinstance(stack, CellStack)
    stack = stack.to(dtype)
    with torch.no_grad():  # peepholes away from their small init so they matter
        for cell in stack.cells:
            if isinstance(cell, PeepholeLSTMCell):
                cell.peephole.mul_(3.0)
    return stack


def _first_cell(stack: CellStack, name: str) -> PeepholeLSTMCell | CIFGCell:
    cell = stack.cells[0]
    assert isinstance(cell, CELLS[name])
    return cell


def _forward_backward(
    stack: CellStack, x: Tensor, state: tuple[Tensor, Tensor] | None
) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    out, (h_n, c_n) = stack(x, state)
    weight = torch.linspace(-1.0, 2.0, out.shape[1], dtype=x.dtype).view(1, -1, 1)
    loss = (out * out * weight).sum() + 3 * h_n.sum() - 2 * (c_n * c_n).sum()
    inputs = [x, *stack.parameters()] + ([] if state is None else list(state))
    return [out, h_n, c_n], torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize(("num_layers", "steps"), [(1, 1), (1, 17), (3, 40)])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrence_matches_autograd_form(
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    dtype: torch.dtype,
    tol: float,
    num_layers: int,
    steps: int,
    with_state: bool,
) -> None:
    stack = _stack(name, num_layers, dtype)
    torch.manual_seed(100 + steps)
    x = torch.randn(BATCH, steps, INPUT, dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        shape = (num_layers, BATCH, HIDDEN)
        h0 = torch.randn(shape, dtype=dtype, requires_grad=True)
        c0 = (2 * torch.randn(shape, dtype=dtype)).requires_grad_()
        state = (h0, c0)
    assert _first_cell(stack, name).use_recurrence(x, (x[:, 0],))
    fast = _forward_backward(stack, x, state)
    monkeypatch.setattr(CELLS[name], "use_recurrence", lambda *_: False)
    reference = _forward_backward(stack, x, state)
    for got, expected in zip([*fast[0], *fast[1]], [*reference[0], *reference[1]], strict=True):
        # relative to the tensor's scale: float32 sums over T * B terms differ by rounding
        scale = max(1.0, expected.abs().max().item())
        assert (got - expected).abs().max().item() <= tol * scale


@pytest.mark.parametrize("name", CELLS)
def test_recurrence_handles_unused_outputs(name: str) -> None:
    stack = _stack(name, 1, torch.float64)
    x = torch.randn(BATCH, 6, INPUT, dtype=torch.float64)
    _, (_, c_n) = stack(x)  # only the final cell state feeds the loss
    c_n.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in stack.parameters())


@pytest.mark.parametrize("name", CELLS)
def test_autograd_form_without_grad(name: str) -> None:
    stack = _stack(name, 2, torch.float32)
    x = torch.randn(BATCH, 9, INPUT)
    with torch.no_grad():
        assert not _first_cell(stack, name).use_recurrence(x, (x[:, 0],))
        out, state = stack(x)
    out_fast, state_fast = stack(x)
    torch.testing.assert_close(out, out_fast)
    for a, b in zip(state, state_fast, strict=True):
        torch.testing.assert_close(a, b)
