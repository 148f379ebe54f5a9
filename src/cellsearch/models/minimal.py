"""minGRU and minLSTM (Feng et al. 2024) with the log-space parallel scan (Heinsen 2023).

Both cells have gates that depend on the input only, so their recurrence is the linear
one h_t = a_t h_{t-1} + b_t with a_t in (0, 1) and b_t > 0. The whole sequence is then
one parallel scan in log space::

    a*_t = cumsum(log a)_t
    h_t  = exp(a*_t + logcumsumexp(log b - a*)_t) + exp(a*_t) h_0

The initial state enters as exp(a*_t) h_0. For h_0 > 0 that equals folding it in as the
first b term (logcumsumexp over [log h_0, log b_1 - a*_1, ...]); written this way it also
holds for a zero or negative h_0 (the default zero state, or a state set by the caller).

The candidate passes through g(x) = x + 0.5 (x >= 0), sigmoid(x) (x < 0), which keeps
b_t positive; as in the authors' code, g is used by the sequential form too, so the two
forms compute the same function. The sequential form (``step`` / ``run_sequential``) is
the reference. With ``mode="auto"``, ``run`` takes the scan on accelerators and the loop
on CPU, where the loop measured faster at every length tried; ``mode="scan"`` forces the
scan. The two agree to rounding (tests/models/test_minimal.py).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cellsearch.models.layers import RecurrentCell, State

__all__ = ["MinGRUCell", "MinLSTMCell", "g", "log_g", "log_space_scan"]

ScanMode = Literal["auto", "scan", "sequential"]

# ``mode="auto"`` uses the scan on accelerators from this many steps on. On CPU it never
# does: benchmarks/cells.py on a 2-core CPU (torch 2.13, B=64, H=64) measured the scan
# 2x to 6x slower than the sequential loop at T = 100, 512 and 1024 (logcumsumexp and
# its backward dominate; see benchmarks/CELLS.md).
SCAN_MIN_STEPS = 2


def g(x: Tensor) -> Tensor:
    """x + 0.5 for x >= 0, sigmoid(x) otherwise: positive, continuous, increasing."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without forming g(x) where it would underflow."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor | None = None) -> Tensor:
    """Solve h_t = a_t h_{t-1} + b_t for all t at once (Heinsen 2023).

    Args:
        log_a: log a_t, (B, T, H).
        log_b: log b_t, (B, T, H).
        h0: Initial state (B, H), any sign; None means zero.

    Returns:
        h_1 .. h_T, (B, T, H).
    """
    a_star = torch.cumsum(log_a, dim=1)  # (B, T, H)
    h = torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))  # (B, T, H)
    if h0 is not None:
        h = h + torch.exp(a_star) * h0.unsqueeze(1)
    return h


class _MinimalCell(RecurrentCell):
    """Shared parts: one input Linear, the scan/loop choice, h as the only state."""

    gates: int = 2

    def __init__(self, input_size: int, hidden_size: int, mode: ScanMode = "auto") -> None:
        super().__init__(input_size, hidden_size)
        self.mode: ScanMode = mode
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.reset_parameters()

    def project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)  # (B, T, gates*H)

    def coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        """log a_t and log b_t of the linear recurrence, each (B, T, H)."""
        raise NotImplementedError

    def use_scan(self, x: Tensor) -> bool:
        """Whether ``run`` takes the parallel scan for this input."""
        if self.mode != "auto":
            return self.mode == "scan"
        return x.device.type != "cpu" and x.shape[1] >= SCAN_MIN_STEPS

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self.use_scan(x):
            return self.run_sequential(x, state)
        log_a, log_b = self.coefficients(self.project(x))
        h = log_space_scan(log_a, log_b, state[0])  # (B, T, H)
        return h, (h[:, -1],)

    def run_sequential(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """The sequential reference form, one :meth:`step` per time step."""
        return super().run(x, state)


class MinGRUCell(_MinimalCell):
    """minGRU: z = sigma(k), h' = (1 - z) h + z g(h~), with [k, h~] = W x + b.

    Args:
        input_size: Features per input step.
        hidden_size: Features of the state.
        mode: "auto" (scan off CPU), "scan" or "sequential".
    """

    gates = 2

    def step(self, gx: Tensor, state: State) -> State:
        k, candidate = gx.chunk(2, -1)  # (B, H) each
        return (torch.lerp(state[0], g(candidate), torch.sigmoid(k)),)

    def coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        k, candidate = gx.chunk(2, -1)  # (B, T, H) each
        return -F.softplus(k), -F.softplus(-k) + log_g(candidate)


class MinLSTMCell(_MinimalCell):
    """minLSTM: f' = f / (f + i), i' = i / (f + i), h' = f' h + i' g(h~).

    f = sigma(f~), i = sigma(i~), with [f~, i~, h~] = W x + b.

    Args:
        input_size: Features per input step.
        hidden_size: Features of the state.
        mode: "auto" (scan off CPU), "scan" or "sequential".
        forget_bias: Initial bias of f~; None keeps the uniform initialisation.
    """

    gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        mode: ScanMode = "auto",
        forget_bias: float | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, mode)
        if forget_bias is not None:
            with torch.no_grad():
                self.bias[:hidden_size].fill_(forget_bias)

    def step(self, gx: Tensor, state: State) -> State:
        f_pre, i_pre, candidate = gx.chunk(3, -1)  # (B, H) each
        f, i = torch.sigmoid(f_pre), torch.sigmoid(i_pre)
        f_norm = f / (f + i)
        return (torch.lerp(g(candidate), state[0], f_norm),)  # f' h + (1 - f') g(h~)

    def coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        f_pre, i_pre, candidate = gx.chunk(3, -1)  # (B, T, H) each
        diff = F.softplus(-f_pre) - F.softplus(-i_pre)
        return -F.softplus(diff), -F.softplus(-diff) + log_g(candidate)
