"""minGRU / minLSTM: the log-space parallel scan against the sequential reference."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from cellsearch.models.minimal import MinGRUCell, MinLSTMCell, g, log_g, log_space_scan

CELL_TYPES = [MinGRUCell, MinLSTMCell]
INPUT, HIDDEN = 3, 4


def _run(cell: MinGRUCell | MinLSTMCell, mode: str, x: Tensor, h0: Tensor) -> Tensor:
    cell.mode = mode  # type: ignore[assignment]
    out, (h_last,) = cell.run(x, (h0,))
    torch.testing.assert_close(h_last, out[:, -1])
    return out


@pytest.mark.parametrize("cell_type", CELL_TYPES)
@pytest.mark.parametrize("steps", [1, 100, 2000])
@pytest.mark.parametrize("h0_sign", [0.0, 1.0, -1.0])
def test_scan_equals_sequential(cell_type: type, steps: int, h0_sign: float) -> None:
    torch.manual_seed(steps)
    cell = cell_type(INPUT, HIDDEN).double()
    x = torch.randn(2, steps, INPUT, dtype=torch.float64, requires_grad=True)
    h0 = (h0_sign * torch.rand(2, HIDDEN, dtype=torch.float64)).requires_grad_()
    weight = torch.randn(2, steps, HIDDEN, dtype=torch.float64)  # a non-trivial loss
    results = []
    for mode in ("scan", "sequential"):
        out = _run(cell, mode, x, h0)
        grads = torch.autograd.grad((out * weight).sum(), [x, h0, *cell.parameters()])
        results.append((out, grads))
    (out_s, grads_s), (out_q, grads_q) = results
    torch.testing.assert_close(out_s, out_q, atol=1e-4, rtol=1e-4)
    for a, b in zip(grads_s, grads_q, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cell_type", CELL_TYPES)
def test_scan_in_float32_stays_close(cell_type: type) -> None:
    torch.manual_seed(0)
    cell = cell_type(INPUT, HIDDEN)
    x = torch.randn(2, 300, INPUT)
    h0 = torch.rand(2, HIDDEN)
    torch.testing.assert_close(
        _run(cell, "scan", x, h0), _run(cell, "sequential", x, h0), atol=1e-4, rtol=1e-3
    )


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


def test_auto_mode_picks_loop_on_cpu() -> None:
    cell = MinGRUCell(INPUT, HIDDEN)
    assert not cell.use_scan(torch.zeros(1, 4096, INPUT))
    assert cell.use_scan(torch.zeros(1, 4, INPUT, device="meta"))
    cell.mode = "scan"
    assert cell.use_scan(torch.zeros(1, 4, INPUT))


def test_minlstm_normalised_gates_sum_to_one() -> None:
    torch.manual_seed(0)
    cell = MinLSTMCell(INPUT, HIDDEN).double()
    # f' = a and i' = b / g(h~): they sum to one
    gx = cell.project(torch.randn(2, 5, INPUT, dtype=torch.float64))
    log_a, log_b = cell.coefficients(gx)
    i_norm = (log_b - log_g(gx[..., 2 * HIDDEN :])).exp()
    torch.testing.assert_close(log_a.exp() + i_norm, torch.ones_like(i_norm))
