"""Peephole LSTM, CIFG, MGU and IndRNN against naive per-step code written from the equations.

The naive versions below read the cells' parameters by meaning (W_i, U_f, p_o, ...) and
apply the equations of REFERENCES.md one step at a time with explicit matrix products; they
share no code with the package.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from cellsearch.models import get_cell
from cellsearch.models.custom import CIFGCell, IndRNNCell, MGUCell, PeepholeLSTMCell
from cellsearch.models.layers import CellStack, RecurrentCell, State

N_IN, H, B, T = 3, 4, 2, 6

CellT = TypeVar("CellT", bound=RecurrentCell)


def sigma(v: Tensor) -> Tensor:
    return 1.0 / (1.0 + torch.exp(-v))


def _stack(name: str, **options: float) -> CellStack:
    torch.manual_seed(0)
    stack = get_cell(name).build(N_IN, H, 1, **options).double()
    assert isinstance(stack, CellStack)
    with torch.no_grad():  # move parameters away from their init so every term matters
        for p in stack.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return stack


def _rows(w: Tensor, k: int) -> Tensor:
    return w[k * H : (k + 1) * H]


def _first_cell(stack: CellStack, cell_type: type[CellT]) -> CellT:
    cell = stack.cells[0]
    assert isinstance(cell, cell_type)
    return cell


def _check(
    name: str,
    cell_type: type[CellT],
    naive_step: Callable[[CellT, Tensor, State], State],
    n_state: int,
    **options: float,
) -> None:
    _check_stack(_stack(name, **options), cell_type, naive_step, n_state)


def _check_stack(
    stack: CellStack,
    cell_type: type[CellT],
    naive_step: Callable[[CellT, Tensor, State], State],
    n_state: int,
) -> None:
    cell = _first_cell(stack, cell_type)
    x = torch.randn(B, T, N_IN, dtype=torch.float64)
    state0 = tuple(torch.randn(B, H, dtype=torch.float64) for _ in range(n_state))
    out, final = stack(x, tuple(s.unsqueeze(0) for s in state0))
    state: State = state0
    expected: list[Tensor] = []
    with torch.no_grad():
        for t in range(T):
            state = naive_step(cell, x[:, t], state)
            expected.append(state[0])
    torch.testing.assert_close(out, torch.stack(expected, 1))
    for got, want in zip(final, state, strict=True):
        torch.testing.assert_close(got[0], want)


def test_peephole_lstm() -> None:
    def step(cell: PeepholeLSTMCell, x: Tensor, state: State) -> State:
        h, c = state
        w, u, b, p = cell.weight_ih, cell.weight_hh, cell.bias, cell.peephole

        def pre(k: int) -> Tensor:
            return x @ _rows(w, k).T + h @ _rows(u, k).T + b[k * H : (k + 1) * H]

        i = sigma(pre(0) + p[0] * c)
        f = sigma(pre(1) + p[1] * c)
        c_new = f * c + i * torch.tanh(pre(2))
        o = sigma(pre(3) + p[2] * c_new)
        return o * torch.tanh(c_new), c_new

    _check("lstm_peephole", PeepholeLSTMCell, step, 2)


def test_cifg() -> None:
    def step(cell: CIFGCell, x: Tensor, state: State) -> State:
        h, c = state
        w, u, b = cell.weight_ih, cell.weight_hh, cell.bias

        def pre(k: int) -> Tensor:
            return x @ _rows(w, k).T + h @ _rows(u, k).T + b[k * H : (k + 1) * H]

        f = sigma(pre(0))
        i = 1.0 - f
        c_new = f * c + i * torch.tanh(pre(1))
        return sigma(pre(2)) * torch.tanh(c_new), c_new

    _check("cifg", CIFGCell, step, 2)


def test_mgu() -> None:
    def step(cell: MGUCell, x: Tensor, state: State) -> State:
        (h,) = state
        w, u, b = cell.weight_ih, cell.weight_hh, cell.bias
        # W_f [h, x] + b_f written as U_f h + W_f x + b_f
        f = sigma(h @ _rows(u, 0).T + x @ _rows(w, 0).T + b[:H])
        h_tilde = torch.tanh((f * h) @ _rows(u, 1).T + x @ _rows(w, 1).T + b[H:])
        return ((1 - f) * h + f * h_tilde,)

    _check("mgu", MGUCell, step, 1)


def test_indrnn_with_clamped_recurrence() -> None:
    bound = 0.7

    def step(cell: IndRNNCell, x: Tensor, state: State) -> State:
        (h,) = state
        u: Tensor = cell.weight_hh
        u = torch.where(u > bound, torch.full_like(u, bound), u)
        u = torch.where(u < -bound, torch.full_like(u, -bound), u)
        return (torch.relu(x @ cell.weight_ih.T + u * h + cell.bias),)

    stack = _stack("indrnn", recurrent_max=bound)
    with torch.no_grad():  # entries beyond the bound on both sides exercise the clamp
        _first_cell(stack, IndRNNCell).weight_hh[:2] = torch.tensor([1.5, -1.2])
    _check_stack(stack, IndRNNCell, step, 1)


def test_indrnn_clamp_blocks_gradient_outside_bound() -> None:
    stack = _stack("indrnn", recurrent_max=0.5)
    u = _first_cell(stack, IndRNNCell).weight_hh
    with torch.no_grad():
        u[:2] = torch.tensor([0.9, -0.6])
    out, _ = stack(torch.randn(B, T, N_IN, dtype=torch.float64))
    out.sum().backward()
    assert u.grad is not None
    outside = u.detach().abs() > 0.5
    assert bool(outside.any())
    assert bool((u.grad[outside] == 0).all())
