"""minGRU / minLSTM: the log-space scan and the linear recurrence against the sequential loop."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from cellsearch.models import minimal
from cellsearch.models.minimal import (
    MinGRUCell,
    MinimalRecurrence,
    MinLSTMCell,
    ScanMode,
    g,
    log_g,
    log_space_scan,
)

CellType = type[MinGRUCell] | type[MinLSTMCell]
CELL_TYPES: list[CellType] = [MinGRUCell, MinLSTMCell]
INPUT, HIDDEN = 3, 4


def _run(cell: MinGRUCell | MinLSTMCell, mode: ScanMode, x: Tensor, h0: Tensor) -> Tensor:
    cell.mode = mode
    out, (h_last,) = cell.run(x, (h0,))
    torch.testing.assert_close(h_last, out[:, -1])
    return out


@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("steps", [1, 100, 2000])
@pytest.mark.parametrize("h0_sign", [0.0, 1.0, -1.0])
@pytest.mark.parametrize("mode", ["scan", "recurrence"])
def test_scan_equals_sequential(
    cell_type: CellType, steps: int, h0_sign: float, mode: ScanMode
) -> None:
    torch.manual_seed(steps)
    cell = cell_type(INPUT, HIDDEN).double()
    x = torch.randn(2, steps, INPUT, dtype=torch.float64, requires_grad=True)
    h0 = (h0_sign * torch.rand(2, HIDDEN, dtype=torch.float64)).requires_grad_()
    weight = torch.randn(2, steps, HIDDEN, dtype=torch.float64)  # a non-trivial loss
    results = []
    for form in (mode, "sequential"):
        out = _run(cell, form, x, h0)
        grads = torch.autograd.grad((out * weight).sum(), [x, h0, *cell.parameters()])
        results.append((out, grads))
    (out_s, grads_s), (out_q, grads_q) = results
    torch.testing.assert_close(out_s, out_q, atol=1e-4, rtol=1e-4)
    for a, b in zip(grads_s, grads_q, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("mode", ["scan", "recurrence"])
def test_scan_in_float32_stays_close(cell_type: CellType, mode: ScanMode) -> None:
    torch.manual_seed(0)
    cell = cell_type(INPUT, HIDDEN)
    x = torch.randn(2, 300, INPUT)
    h0 = torch.rand(2, HIDDEN)
    torch.testing.assert_close(
        _run(cell, mode, x, h0), _run(cell, "sequential", x, h0), atol=1e-4, rtol=1e-3
    )


@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("mode", ["scan", "recurrence"])
def test_float32_stable_over_2000_steps(cell_type: CellType, mode: ScanMode) -> None:
    """Strong decay and large inputs over T=2000 in float32: no 0, inf or NaN anywhere."""
    torch.manual_seed(3)
    cell = cell_type(INPUT, HIDDEN)
    with torch.no_grad():
        cell.weight_ih.mul_(8.0)  # gates saturate: a_t near 0 or 1, b_t tiny or large
    x = torch.randn(2, 2000, INPUT, requires_grad=True)
    h0 = torch.zeros(2, HIDDEN)
    out = _run(cell, mode, x, h0)
    grads = torch.autograd.grad(out[:, ::100].sum(), [x, *cell.parameters()])
    assert bool((out > 0).all()) and bool(torch.isfinite(out).all())
    assert all(bool(torch.isfinite(grad).all()) for grad in grads)
    expected = _run(cell, "sequential", x, h0)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_recurrence_gradcheck_across_chunks(
    monkeypatch: pytest.MonkeyPatch, cell_type: CellType
) -> None:
    monkeypatch.setattr(minimal, "CHUNK_STEPS", 3)  # 8 steps: chunks of 3, 3 and 2
    torch.manual_seed(0)
    gx = torch.randn(8, 2, cell_type.gates * 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda gx, h0: MinimalRecurrence.apply(gx, h0, cell_type), (gx, h0)
    )
    # and the same function as the step-by-step recurrence
    a, b = cell_type.recurrence_coefficients(gx.detach())
    h, expected = h0.detach(), []
    for t in range(8):
        h = a[t] * h + b[t]
        expected.append(h)
    torch.testing.assert_close(MinimalRecurrence.apply(gx, h0, cell_type), torch.stack(expected))


def test_log_space_scan_solves_the_recurrence() -> None:
    torch.manual_seed(0)
    a = torch.rand(2, 50, 3, dtype=torch.float64) * 0.98 + 0.01
    b = torch.rand(2, 50, 3, dtype=torch.float64) + 0.01
    h0 = torch.randn(2, 3, dtype=torch.float64)
    expected, h = [], h0
    for t in range(50):
        h = a[:, t] * h + b[:, t]
        expected.append(h)
    torch.testing.assert_close(log_space_scan(a.log(), b.log(), h0), torch.stack(expected, 1))
    # h0 > 0 folded in as the first b term gives the same thing
    folded = torch.cat([h0.abs().log().unsqueeze(1), b.log() - a.log().cumsum(1)], 1)
    lead = torch.cat([torch.zeros(2, 1, 3, dtype=torch.float64), a.log().cumsum(1)], 1)
    by_folding = (lead + folded.logcumsumexp(1)).exp()[:, 1:]
    torch.testing.assert_close(log_space_scan(a.log(), b.log(), h0.abs()), by_folding)


def test_g_is_positive_continuous_and_log_g_matches() -> None:
    x = torch.linspace(-30, 30, 601, dtype=torch.float64)
    assert bool((g(x) > 0).all())
    torch.testing.assert_close(g(torch.zeros(1)), torch.tensor([0.5]))
    torch.testing.assert_close(log_g(x), g(x).log())


def test_auto_mode_picks_recurrence_on_cpu() -> None:
    cell = MinGRUCell(INPUT, HIDDEN)
    assert cell.form(torch.zeros(1, 1, INPUT)) == "sequential"
    for steps in (minimal.RECURRENCE_MIN_STEPS, 100, 4096):
        assert cell.form(torch.zeros(1, steps, INPUT)) == "recurrence"
    assert not cell.use_scan(torch.zeros(1, 4096, INPUT))
    assert cell.use_scan(torch.zeros(1, 4, INPUT, device="meta"))
    cell.mode = "scan"
    assert cell.use_scan(torch.zeros(1, 4, INPUT))


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_recurrence_without_grad(cell_type: CellType) -> None:
    torch.manual_seed(0)
    cell = cell_type(INPUT, HIDDEN)
    x, h0 = torch.randn(2, 50, INPUT), torch.randn(2, HIDDEN)
    with torch.no_grad():
        got = _run(cell, "recurrence", x, h0)
    torch.testing.assert_close(got, _run(cell, "sequential", x, h0), atol=1e-5, rtol=1e-5)


def test_minlstm_normalised_gates_sum_to_one() -> None:
    torch.manual_seed(0)
    cell = MinLSTMCell(INPUT, HIDDEN).double()
    # f' = a and i' = b / g(h~): they sum to one
    gx = cell.project(torch.randn(2, 5, INPUT, dtype=torch.float64))
    log_a, log_b = cell.coefficients(gx)
    i_norm = (log_b - log_g(gx[..., 2 * HIDDEN :])).exp()
    torch.testing.assert_close(log_a.exp() + i_norm, torch.ones_like(i_norm))
