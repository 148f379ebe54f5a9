"""A faster CPU training path for the minimal gated unit (MGU).

Written through autograd, one MGU step is a handful of small ops around two dependent
matmuls, each recorded in the graph and replayed one by one in the backward; at B=64,
H=64 it ran at 2.7x to 3.3x fused nn.LSTM on CPU (benchmarks/CELLS.md).
:class:`MGURecurrence` replaces it, as :mod:`cellsearch.models.lstm_family` does for the
peephole LSTM and the CIFG: the forward loop runs without a graph and keeps the
activations; the backward precomputes, vectorised over time and written into one buffer,
every coefficient that does not depend on the incoming gradient, so that the reverse
loop is two elementwise ops and two matmuls per step; the gradients of U_f and U_h are
one reduction over all steps each. ``gx`` holds W x_t + b of every step, time major,
gates f then n.

MGU (``weight_hh`` rows U_f then U_h)::

    f   = sigma(gx_f + U_f h_{t-1});  m = f h_{t-1}
    n   = tanh(gx_n + U_h m)
    h_t = (1 - f) h_{t-1} + f n

    backward, dh the total gradient reaching h_t, s = f (1 - f):
    da_n = dh f (1 - n^2);  dm = U_h^T da_n
    da_f = dh (n - h_{t-1}) s + dm h_{t-1} s
    dh_{t-1} = dh (1 - f) + dm f + U_f^T da_f + dL/dh_{t-1}
    dU_f = sum_t da_f h_{t-1}^T;  dU_h = sum_t da_n m^T

Used on CPU only and only when a gradient is needed (see
:func:`cellsearch.models.custom.trains_on_cpu`); tests/models/test_mgu.py checks it
against the cell's autograd form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["MGURecurrence"]


class MGURecurrence(torch.autograd.Function):
    """The MGU recurrence given precomputed input projections (time major)."""

    @staticmethod
    def forward(ctx: Any, gx: Tensor, h0: Tensor, w_hh: Tensor) -> Tensor:
        """Run the recurrence.

        Args:
            ctx: Autograd context.
            gx: Input projections W_ih x + b, (T, B, 2H), gates f, n.
            h0: Initial hidden state, (B, H).
            w_hh: Recurrent weight, (2H, H): U_f then U_h.

        Returns:
            Hidden states of every step, (T, B, H).
        """
        steps, batch, gates = gx.shape
        hidden = gates // 2
        hs = gx.new_empty(steps + 1, batch, hidden)  # h_0 .. h_T
        hs[0] = h0
        acts = gx.new_empty(steps, batch, 2, hidden)  # f, n after their nonlinearity
        ms = gx.new_empty(steps, batch, hidden)  # m = f h_{t-1}, the input of U_h
        u_f_t, u_h_t = w_hh[:hidden].t(), w_hh[hidden:].t()
        # per-step views made once (unbind), not by indexing inside the loop
        gx_f_, gx_n_ = gx[:, :, :hidden].unbind(0), gx[:, :, hidden:].unbind(0)
        hs_, ms_ = hs.unbind(0), ms.unbind(0)
        f_, n_ = acts[:, :, 0].unbind(0), acts[:, :, 1].unbind(0)  # (B, H) each
        for t in range(steps):
            f = torch.addmm(gx_f_[t], hs_[t], u_f_t, out=f_[t]).sigmoid_()
            m = torch.mul(f, hs_[t], out=ms_[t])
            n = torch.addmm(gx_n_[t], m, u_h_t, out=n_[t]).tanh_()
            torch.lerp(hs_[t], n, f, out=hs_[t + 1])  # h + f (n - h)
        ctx.save_for_backward(hs, acts, ms, w_hh)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Reverse loop of four ops per step; everything else is vectorised over T."""
        hs, acts, ms, w_hh = ctx.saved_tensors
        steps, batch, _, hidden = acts.shape
        u_f, u_h = w_hh[:hidden], w_hh[hidden:]
        f, n = acts.unbind(2)  # (T, B, H) each
        h_prev = hs[:-1]  # (T, B, H)
        # Coefficients of the reverse loop (none depends on the incoming gradient), all
        # written into one buffer: fresh large temporaries cost page faults on CPU.
        coef = acts.new_empty(steps, batch, 5, hidden)  # (T, B, 5, H)
        from_h = coef[:, :, :3]  # dh -> dh_{t-1}, da_f, da_n
        from_m = coef[:, :, 3:]  # dm -> dh_{t-1}, da_f
        to_h, to_a_f, to_a_n, m_to_h, m_to_a_f = coef.unbind(2)
        torch.addcmul(f, f, f, value=-1, out=m_to_a_f)  # s = sigma' = f - f^2
        torch.sub(n, h_prev, out=to_a_f).mul_(m_to_a_f)  # (n - h_{t-1}) s
        m_to_a_f.mul_(h_prev)  # h_{t-1} s
        torch.mul(n, n, out=to_a_n)
        torch.addcmul(f, f, to_a_n, value=-1, out=to_a_n)  # f (1 - n^2)
        torch.neg(f, out=to_h).add_(1)  # 1 - f
        m_to_h.copy_(f)
        # grad: dL/dh_{t-1} (seeded with the output's own gradient), da_f, da_n
        grad = acts.new_empty(steps, batch, 3, hidden)  # (T, B, 3, H)
        grad[0, :, 0].zero_()
        grad[1:, :, 0] = grad_out[:-1]
        grad[:, :, 1:].zero_()
        grad_h = grad_out[-1]
        from_h_, from_m_, grad_ = from_h.unbind(0), from_m.unbind(0), grad.unbind(0)
        to_prev_, grad_a_f_, grad_a_n_ = (grad[:, :, k].unbind(0) for k in range(3))
        pair_ = grad[:, :, :2].unbind(0)  # (B, 2, H) each: dL/dh_{t-1}, da_f
        for t in range(steps - 1, -1, -1):
            grad_[t].addcmul_(from_h_[t], grad_h.unsqueeze(1))
            grad_m = grad_a_n_[t] @ u_h
            pair_[t].addcmul_(from_m_[t], grad_m.unsqueeze(1))
            grad_h = torch.addmm(to_prev_[t], grad_a_f_[t], u_f)  # gradient reaching h_{t-1}
        grad_gx = grad[:, :, 1:].reshape(steps, batch, 2 * hidden)  # a view: da_f, da_n
        grad_w = w_hh.new_empty(2 * hidden, hidden)
        grad_a_f, grad_a_n = grad[:, :, 1].reshape(-1, hidden), grad[:, :, 2].reshape(-1, hidden)
        torch.mm(grad_a_f.t(), h_prev.reshape(-1, hidden), out=grad_w[:hidden])
        torch.mm(grad_a_n.t(), ms.reshape(-1, hidden), out=grad_w[hidden:])
        return grad_gx, grad_h, grad_w
