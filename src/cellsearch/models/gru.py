"""A faster GRU training path for CPU, behind the ``gru`` registry entry.

On CPU, torch's fused ``nn.LSTM`` runs through oneDNN while ``nn.GRU`` is a composite of
per-step aten ops whose backward goes through the autograd graph step by step; a forward
plus backward pass of nn.GRU took about 2x the time of nn.LSTM at B=64, T=100, H=64
(see benchmarks/CELLS.md). This module keeps nn.GRU's parameters and equations
(PyTorch layout, gates r, z, n)::

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
    h' = (1 - z) * n + z * h

and replaces the recurrence by :class:`GRURecurrence`, an autograd function with a
hand-written backward. The input projections of all steps are one matmul outside it.
Its forward loop runs without building a graph; its backward precomputes every
coefficient that does not depend on the incoming gradient, so the reverse loop is four
small ops per step, and the recurrent weight gradient is one matmul over all steps.

It is used only on CPU and only when a gradient is needed; CUDA and inference keep the
fused kernel. tests/models/test_parity.py guards it against nn.GRU (outputs, state,
gradients).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from cellsearch.models.layers import FusedStack, State

__all__ = ["GRURecurrence", "GRUStack", "gru_layer"]


class GRURecurrence(torch.autograd.Function):
    """The GRU recurrence given precomputed input projections (time major)."""

    @staticmethod
    def forward(ctx: Any, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
        """Run the recurrence.

        Args:
            ctx: Autograd context.
            gi: Input projections W_ih x + b_ih, (T, B, 3H).
            h0: Initial hidden state, (B, H).
            w_hh: Recurrent weight, (3H, H).
            b_hh: Recurrent bias, (3H,).

        Returns:
            Hidden states of every step, (T, B, H).
        """
        steps, batch, gates = gi.shape
        hidden = gates // 3
        hs = gi.new_empty(steps + 1, batch, hidden)  # h_0 .. h_T
        hs[0] = h0
        gh = gi.new_empty(steps, batch, gates)  # W_hh h + b_hh per step
        rz = gi.new_empty(steps, batch, 2 * hidden)
        n = gi.new_empty(steps, batch, hidden)
        w_t = w_hh.t()
        for t in range(steps):
            gh_t = torch.addmm(b_hh, hs[t], w_t, out=gh[t])  # (B, 3H)
            rz_t = torch.add(gi[t, :, : 2 * hidden], gh_t[:, : 2 * hidden], out=rz[t]).sigmoid_()
            n_t = torch.addcmul(
                gi[t, :, 2 * hidden :], rz_t[:, :hidden], gh_t[:, 2 * hidden :], out=n[t]
            ).tanh_()
            torch.lerp(n_t, hs[t], rz_t[:, hidden:], out=hs[t + 1])  # n + z (h - n)
        ctx.save_for_backward(hs, gh, rz, n, w_hh)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Reverse loop of four ops per step; everything else is vectorised over T."""
        hs, gh, rz, n, w_hh = ctx.saved_tensors
        steps, batch, hidden = n.shape
        r, z = rz[..., :hidden], rz[..., hidden:]
        gh_n = gh[..., 2 * hidden :]
        d_n_pre = (1 - z) * (1 - n * n)  # d h' / d (pre-activation of n)
        # d h' / d (W_hh h + b_hh) for the r, z and n slices, stacked: (T, B, 3, H)
        coef = torch.stack(
            [d_n_pre * gh_n * r * (1 - r), (hs[:-1] - n) * z * (1 - z), d_n_pre * r], 2
        )
        grad_gh = torch.empty_like(coef)  # (T, B, 3, H)
        grad_h_steps = torch.empty_like(n)  # total gradient reaching h_t, (T, B, H)
        grad_h = torch.zeros_like(hs[0])
        for t in range(steps - 1, -1, -1):
            grad_h = torch.add(grad_h, grad_out[t], out=grad_h_steps[t])
            g = torch.mul(coef[t], grad_h.unsqueeze(1), out=grad_gh[t]).view(batch, 3 * hidden)
            grad_h = torch.addmm(grad_h * z[t], g, w_hh)  # gradient reaching h_{t-1}
        grad_gh_flat = grad_gh.view(steps * batch, 3 * hidden)
        grad_gi = torch.cat([grad_gh[:, :, :2].flatten(2), grad_h_steps * d_n_pre], -1)
        grad_w = grad_gh_flat.t() @ hs[:-1].reshape(steps * batch, hidden)  # (3H, H)
        return grad_gi, grad_h, grad_w, grad_gh_flat.sum(0)


def gru_layer(
    x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
) -> Tensor:
    """One GRU layer with nn.GRU's weights, batch first.

    Args:
        x: Input (B, T, I).
        h0: Initial state (B, H).
        w_ih: Input weight (3H, I).
        w_hh: Recurrent weight (3H, H).
        b_ih: Input bias (3H,).
        b_hh: Recurrent bias (3H,).

    Returns:
        Output (B, T, H).
    """
    gi = F.linear(x.transpose(0, 1), w_ih, b_ih)  # (T, B, 3H): all steps in one matmul
    out = GRURecurrence.apply(gi.contiguous(), h0.contiguous(), w_hh, b_hh)  # (T, B, H)
    return out.transpose(0, 1)


class GRUStack(FusedStack):
    """``gru``: nn.GRU's parameters; the hand-written recurrence when training on CPU.

    Args:
        rnn: The ``nn.GRU`` module (batch first).
        state_layout: The cell spec's layout, one name (h).
    """

    def __init__(self, rnn: nn.GRU, state_layout: tuple[str, ...]) -> None:
        super().__init__(rnn, state_layout)

    def _use_cpu_path(self, x: Tensor) -> bool:
        return (
            x.device.type == "cpu"
            and torch.is_grad_enabled()
            and (x.requires_grad or any(p.requires_grad for p in self.rnn.parameters()))
        )

    def _run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        if not self._use_cpu_path(x):
            return super()._run(x, state)
        finals = []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0.0:
                x = F.dropout(x, self.dropout, self.training)
            weights = [getattr(self.rnn, f"{kind}_l{layer}") for kind in _WEIGHT_NAMES]
            x = gru_layer(x, state[0][layer], *weights)  # (B, T, H)
            finals.append(x[:, -1])
        return x, (torch.stack(finals),)


_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
