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
the reference.

On CPU the log-space scan loses to the loop at every length tried (``logcumsumexp``'s
forward alone costs nearly as much as the loop's forward and backward;
benchmarks/CELLS.md). What wins there is a third
form, ``mode="recurrence"`` (:class:`MinimalRecurrence`): time in chunks of
:data:`CHUNK_STEPS` steps, the gates of a chunk computed at once without a graph, then
one fused multiply-add per step; the backward is the reverse recurrence

    g_t = dL/dh_t + a_{t+1} g_{t+1},   dL/db_t = g_t,   dL/da_t = g_t h_{t-1},

also one op per step, followed by the hand-written gate derivatives of the chunk. It
works in linear space, exactly like the sequential form, so it is stable at any length.
With ``mode="auto"``, ``run`` takes the recurrence on CPU (the loop for fewer than
:data:`RECURRENCE_MIN_STEPS` steps) and the scan on accelerators. All three forms agree
to rounding (tests/models/test_minimal.py).
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from cellsearch.models.layers import RecurrentCell, State

__all__ = [
    "MinGRUCell",
    "MinLSTMCell",
    "MinimalRecurrence",
    "g",
    "log_g",
    "log_space_scan",
]

ScanMode = Literal["auto", "scan", "recurrence", "sequential"]

# ``mode="auto"`` uses the scan on accelerators from this many steps on. On CPU it never
# does: benchmarks/cells.py on a 2-core CPU (torch 2.13, B=64, H=64) measured the scan
# 2x to 7x slower than the sequential loop at T = 100, 512 and 1024 (logcumsumexp and
# its backward dominate; see benchmarks/CELLS.md).
SCAN_MIN_STEPS = 2
# On CPU ``auto`` takes the recurrence from this many steps on and the loop below: at
# B=64, H=64 the recurrence measured slower at T = 1 and 2 (its fixed cost), even at
# T = 4 and faster from T = 8 on, by more the longer the sequence.
RECURRENCE_MIN_STEPS = 8
# Steps per chunk of MinimalRecurrence: (CHUNK_STEPS, B, H) temporaries stay cache sized.
CHUNK_STEPS = 64


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


class _Gates(Protocol):
    """What :class:`MinimalRecurrence` needs from a cell: its gates, without a graph."""

    @staticmethod
    def recurrence_coefficients(gx: Tensor) -> tuple[Tensor, Tensor]:
        """a_t and b_t from the input projections (C, B, G), each (C, B, H)."""

    @staticmethod
    def recurrence_input_grad(
        gx: Tensor, a: Tensor, grad_b: Tensor, h_prev: Tensor, out: Tensor
    ) -> None:
        """Write dL/dgx (C, B, G) into ``out``, given a_t, dL/db_t and h_{t-1} (C, B, H)."""


class MinimalRecurrence(torch.autograd.Function):
    """h_t = a_t h_{t-1} + b_t with a_t, b_t computed from gx by the cell's gates.

    Time is processed in chunks of :data:`CHUNK_STEPS` steps: the gates of a chunk are
    computed at once (no graph) and the chunk's steps then take one fused multiply-add
    each. The backward recomputes a chunk's gates, runs the reverse recurrence
    g_t = dL/dh_t + a_{t+1} g_{t+1} over it with the a_t saved by the forward
    (dL/db_t = g_t, dL/da_t = g_t h_{t-1}) and turns that into dL/dgx by the cell's
    hand-written gate derivatives. Chunks keep the temporaries small enough to stay in
    cache and to be recycled by the allocator.
    """

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, gates: type[_Gates]) -> Tensor:
        """Run the recurrence.

        Args:
            ctx: Autograd context.
            gx: Input projections, (T, B, G), time major.
            h0: Initial state, (B, H), any sign.
            gates: The cell class, providing its gate functions.

        Returns:
            h_1 .. h_T, (T, B, H).
        """
        steps, batch = gx.shape[:2]
        hs = gx.new_empty(steps + 1, batch, h0.shape[-1])  # h_0 .. h_T
        hs[0] = h0
        decay = gx.new_empty(steps, batch, h0.shape[-1])  # a_1 .. a_T
        for start in range(0, steps, CHUNK_STEPS):
            a, b = gates.recurrence_coefficients(gx[start : start + CHUNK_STEPS])  # (C, B, H)
            decay[start : start + a.shape[0]] = a
            for j in range(a.shape[0]):
                torch.addcmul(b[j], a[j], hs[start + j], out=hs[start + j + 1])
        ctx.gates = gates
        ctx.save_for_backward(gx, hs, decay)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, None]:
        """Chunks in reverse: reverse recurrence, then the gate derivatives of the chunk."""
        gx, hs, decay = ctx.saved_tensors
        gates: type[_Gates] = ctx.gates
        steps = gx.shape[0]
        grad_gx = torch.empty_like(gx)  # (T, B, G)
        grad_b = hs.new_empty(min(steps, CHUNK_STEPS), *hs.shape[1:])  # g of one chunk
        carry = torch.zeros_like(hs[0])  # a_{t+1} g_{t+1} entering the chunk's last step
        for start in reversed(range(0, steps, CHUNK_STEPS)):
            stop = min(start + CHUNK_STEPS, steps)
            a = decay[start:stop]  # (C, B, H)
            g_chunk = grad_b[: stop - start]
            torch.add(grad_out[stop - 1], carry, out=g_chunk[-1])
            for j in range(stop - start - 2, -1, -1):
                torch.addcmul(grad_out[start + j], a[j + 1], g_chunk[j + 1], out=g_chunk[j])
            carry = a[0] * g_chunk[0]
            gates.recurrence_input_grad(
                gx[start:stop], a, g_chunk, hs[start:stop], grad_gx[start:stop]
            )
        return grad_gx, carry, None


def _g_no_graph(x: Tensor) -> Tensor:
    """g(x) as relu(x) + sigma(min(x, 0)): the same values as :func:`g` without a mask.

    On CPU ``torch.where`` with a boolean mask measured 10x slower than these passes.
    """
    return torch.sigmoid(x.clamp(max=0.0)).add_(torch.relu(x))


def _g_and_slope(x: Tensor) -> tuple[Tensor, Tensor]:
    """g(x) and g'(x) (1 for x >= 0, sigma'(x) otherwise), without a graph or a mask."""
    sig = torch.sigmoid(x.clamp(max=0.0))  # 0.5 where x >= 0
    slope = torch.ge(x, 0.0).to(x.dtype).mul_(0.75).addcmul_(sig, 1 - sig)  # 0.75 + 0.25
    return torch.relu(x).add_(sig), slope


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

    def form(self, x: Tensor) -> ScanMode:
        """The form ``run`` takes for this input: "scan", "recurrence" or "sequential"."""
        if self.mode != "auto":
            return self.mode
        if x.device.type == "cpu":
            return "recurrence" if x.shape[1] >= RECURRENCE_MIN_STEPS else "sequential"
        return "scan" if x.shape[1] >= SCAN_MIN_STEPS else "sequential"

    def use_scan(self, x: Tensor) -> bool:
        """Whether ``run`` takes the log-space parallel scan for this input."""
        return self.form(x) == "scan"

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        form = self.form(x)
        if form == "sequential":
            return self.run_sequential(x, state)
        if form == "recurrence":
            gx = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # (T, B, G)
            out = MinimalRecurrence.apply(gx.contiguous(), state[0].contiguous(), type(self))
            out = out.transpose(0, 1)  # (B, T, H)
            return out, (out[:, -1],)
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
        mode: "auto" (recurrence on CPU from RECURRENCE_MIN_STEPS steps, scan
            elsewhere), "scan", "recurrence" or "sequential".
    """

    gates = 2

    def step(self, gx: Tensor, state: State) -> State:
        k, candidate = gx.chunk(2, -1)  # (B, H) each
        return (torch.lerp(state[0], g(candidate), torch.sigmoid(k)),)

    def coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        k, candidate = gx.chunk(2, -1)  # (B, T, H) each
        return -F.softplus(k), -F.softplus(-k) + log_g(candidate)

    @staticmethod
    def recurrence_coefficients(gx: Tensor) -> tuple[Tensor, Tensor]:
        """a = 1 - z and b = z g(h~), each (C, B, H), from gx (C, B, 2H)."""
        k, candidate = gx.chunk(2, -1)  # (C, B, H) each
        z = torch.sigmoid(k)
        return 1 - z, z * _g_no_graph(candidate)

    @staticmethod
    def recurrence_input_grad(
        gx: Tensor, a: Tensor, grad_b: Tensor, h_prev: Tensor, out: Tensor
    ) -> None:
        """dL/dk = z (1 - z) g_t (g(h~) - h_{t-1}), dL/dh~ = g_t z g'(h~), into ``out``."""
        k, candidate = gx.chunk(2, -1)  # (C, B, H) each
        z = 1 - a
        value, slope = _g_and_slope(candidate)
        z_grad = z * grad_b
        torch.mul(z_grad - z_grad * z, value - h_prev, out=out[..., : k.shape[-1]])
        torch.mul(z_grad, slope, out=out[..., k.shape[-1] :])


class MinLSTMCell(_MinimalCell):
    """minLSTM: f' = f / (f + i), i' = i / (f + i), h' = f' h + i' g(h~).

    f = sigma(f~), i = sigma(i~), with [f~, i~, h~] = W x + b.

    Args:
        input_size: Features per input step.
        hidden_size: Features of the state.
        mode: "auto" (recurrence on CPU from RECURRENCE_MIN_STEPS steps, scan
            elsewhere), "scan", "recurrence" or "sequential".
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

    @staticmethod
    def recurrence_coefficients(gx: Tensor) -> tuple[Tensor, Tensor]:
        """a = f' and b = (1 - f') g(h~), each (C, B, H), from gx (C, B, 3H)."""
        hidden = gx.shape[-1] // 3
        # f' = f / (f + i) = sigma(s), s = log f - log i: no 0 / 0 when both underflow
        soft = F.softplus(-gx[..., : 2 * hidden])  # -log f, -log i: (C, B, 2H)
        f_norm = torch.sigmoid(soft[..., hidden:] - soft[..., :hidden])
        return f_norm, (1 - f_norm) * _g_no_graph(gx[..., 2 * hidden :])

    @staticmethod
    def recurrence_input_grad(
        gx: Tensor, a: Tensor, grad_b: Tensor, h_prev: Tensor, out: Tensor
    ) -> None:
        """Gate derivatives into ``out`` (C, B, 3H), given g_t = dL/db_t and h_{t-1}.

        dL/ds = f' (1 - f') g_t (h_{t-1} - g(h~)); ds/df~ = sigma(-f~), ds/di~ = -sigma(-i~);
        dL/dh~ = g_t (1 - f') g'(h~).
        """
        steps, batch, hidden = a.shape
        value, slope = _g_and_slope(gx[..., 2 * hidden :])
        i_grad = grad_b - grad_b * a  # g_t (1 - f')
        grad_s = i_grad * a * (h_prev - value)  # (C, B, H)
        # ds/df~ = sigma(-f~), ds/di~ = -sigma(-i~), both at once: (C, B, 2, H)
        sig = torch.sigmoid(-gx[..., : 2 * hidden]).view(steps, batch, 2, hidden)
        sig[:, :, 1].neg_()
        gates = out[..., : 2 * hidden].view(steps, batch, 2, hidden)
        torch.mul(sig, grad_s.unsqueeze(2), out=gates)
        torch.mul(i_grad, slope, out=out[..., 2 * hidden :])
