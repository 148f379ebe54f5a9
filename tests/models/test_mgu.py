"""The CPU training path of mgu (MGURecurrence) against the cell's autograd form."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from cellsearch.models import get_cell
from cellsearch.models.custom import MGUCell
from cellsearch.models.layers import CellStack
from cellsearch.models.mgu import MGURecurrence

INPUT, HIDDEN = 5, 7


def _stack(num_layers: int, dtype: torch.dtype) -> CellStack:
    torch.manual_seed(num_layers)
    stack = get_cell("mgu").build(INPUT, HIDDEN, num_layers)
    assert isinstance(stack, CellStack)
    stack = stack.to(dtype)
    with torch.no_grad():  # parameters away from their small init so every term matters
        for p in stack.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return stack


def _first_cell(stack: CellStack) -> MGUCell:
    cell = stack.cells[0]
    assert isinstance(cell, MGUCell)
    return cell


def _forward_backward(
    stack: CellStack, x: Tensor, state: tuple[Tensor] | None, final_only: bool = False
) -> tuple[list[Tensor], tuple[Tensor, ...]]:
    out, (h_n,) = stack(x, state)
    weight = torch.linspace(-1.0, 2.0, out.shape[1], dtype=x.dtype).view(1, -1, 1)
    loss = 3 * h_n.sum() - 2 * (h_n * h_n).sum()
    if not final_only:
        loss = loss + (out * out * weight).sum()
    inputs = [x, *stack.parameters()] + ([] if state is None else list(state))
    return [out, h_n], torch.autograd.grad(loss, inputs)


def _count_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of MGURecurrence.apply from here on."""
    calls: list[int] = []
    original: Callable[..., Tensor] = MGURecurrence.apply

    def counting(*args: Tensor) -> Tensor:
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(MGURecurrence, "apply", counting)
    return calls


def _assert_matches(
    fast: tuple[list[Tensor], tuple[Tensor, ...]],
    reference: tuple[list[Tensor], tuple[Tensor, ...]],
    tol: float,
) -> None:
    got_all, expected_all = [*fast[0], *fast[1]], [*reference[0], *reference[1]]
    for got, expected in zip(got_all, expected_all, strict=True):
        # relative to the tensor's scale: float32 sums over T * B terms differ by rounding
        scale = max(1.0, expected.abs().max().item())
        assert (got - expected).abs().max().item() <= tol * scale


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("steps", [1, 7, 100])
@pytest.mark.parametrize("batch", [1, 5])
@pytest.mark.parametrize("with_state", [False, True])
def test_recurrence_matches_autograd_form(
    monkeypatch: pytest.MonkeyPatch,
    dtype: torch.dtype,
    tol: float,
    num_layers: int,
    steps: int,
    batch: int,
    with_state: bool,
) -> None:
    stack = _stack(num_layers, dtype)
    torch.manual_seed(100 + steps)
    x = torch.randn(batch, steps, INPUT, dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        state = (torch.randn(num_layers, batch, HIDDEN, dtype=dtype, requires_grad=True),)
    assert _first_cell(stack).use_recurrence(x, (x[:, 0],))
    calls = _count_calls(monkeypatch)
    fast = _forward_backward(stack, x, state)
    assert len(calls) == num_layers  # every layer went through the recurrence
    monkeypatch.setattr(MGUCell, "use_recurrence", lambda *_: False)
    reference = _forward_backward(stack, x, state)
    assert len(calls) == num_layers
    _assert_matches(fast, reference, tol)


def test_recurrence_when_only_final_state_feeds_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stack(2, torch.float64)
    x = torch.randn(3, 9, INPUT, dtype=torch.float64, requires_grad=True)
    state = (torch.randn(2, 3, HIDDEN, dtype=torch.float64, requires_grad=True),)
    fast = _forward_backward(stack, x, state, final_only=True)
    monkeypatch.setattr(MGUCell, "use_recurrence", lambda *_: False)
    reference = _forward_backward(stack, x, state, final_only=True)
    _assert_matches(fast, reference, 1e-10)


def test_recurrence_gradcheck() -> None:
    torch.manual_seed(0)
    steps, batch, hidden = 4, 3, 2
    gx = torch.randn(steps, batch, 2 * hidden, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(batch, hidden, dtype=torch.float64, requires_grad=True)
    w_hh = torch.randn(2 * hidden, hidden, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MGURecurrence.apply, (gx, h0, w_hh))


def test_autograd_form_without_grad(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = _stack(2, torch.float32)
    x = torch.randn(3, 9, INPUT)
    calls = _count_calls(monkeypatch)
    with torch.no_grad():
        assert not _first_cell(stack).use_recurrence(x, (x[:, 0],))
        out, state = stack(x)
    assert not calls
    out_fast, state_fast = stack(x)
    assert len(calls) == 2
    torch.testing.assert_close(out, out_fast)
    torch.testing.assert_close(state[0], state_fast[0])


def test_autograd_form_when_nothing_needs_grad() -> None:
    stack = _stack(1, torch.float32).requires_grad_(False)
    x = torch.randn(3, 9, INPUT)
    assert not _first_cell(stack).use_recurrence(x, (x[:, 0],))
    assert _first_cell(stack).use_recurrence(x.requires_grad_(), (x[:, 0],))
