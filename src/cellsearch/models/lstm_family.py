"""Faster CPU training paths for the peephole LSTM and the CIFG LSTM.

Written through autograd, one step of these cells is several small ops, each recorded in
the graph and replayed one by one in the backward; at B=64, H=64 that overhead dominates
(the peephole LSTM ran at about 4x fused nn.LSTM on CPU, benchmarks/CELLS.md).
:class:`PeepholeRecurrence` and :class:`CIFGRecurrence` replace it, as
:mod:`cellsearch.models.gru` does for the GRU: the forward loop runs without a graph and
keeps the activations; the backward precomputes, vectorised over time and written into
one buffer, every coefficient that does not depend on the incoming gradient, so that the
reverse loop is five small ops per step; the recurrent weight (and peephole) gradients
are one reduction over all steps each. ``gx`` holds W x_t + b of every step, time major.

Peephole LSTM (gates i, f, g, o)::

    a   = gx_t + W_hh h_{t-1}
    i   = sigma(a_i + p_i c_{t-1});  f = sigma(a_f + p_f c_{t-1});  g = tanh(a_g)
    c_t = f c_{t-1} + i g
    o   = sigma(a_o + p_o c_t);      h_t = o tanh(c_t)

    backward, dh the total gradient reaching h_t, dc the one reaching c_t from t+1:
    da_o = dh tanh(c_t) o (1 - o)
    dc   = dc + dh o (1 - tanh(c_t)^2) + da_o p_o
    da_i = dc g i (1 - i);  da_f = dc c_{t-1} f (1 - f);  da_g = dc i (1 - g^2)
    dc_{t-1} = dc f + da_i p_i + da_f p_f;  dh_{t-1} = W_hh^T da + dL/dh_{t-1}

CIFG (gates f, g, o; i = 1 - f)::

    c_t = f c_{t-1} + (1 - f) g;  h_t = o tanh(c_t)

    da_o = dh tanh(c_t) o (1 - o);  dc = dc + dh o (1 - tanh(c_t)^2)
    da_f = dc (c_{t-1} - g) f (1 - f);  da_g = dc (1 - f) (1 - g^2);  dc_{t-1} = dc f

Used on CPU only and only when a gradient is needed (see
:func:`cellsearch.models.custom.trains_on_cpu`); tests/models/test_lstm_family.py checks
both against the cells' autograd form.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["CIFGRecurrence", "PeepholeRecurrence"]


class PeepholeRecurrence(torch.autograd.Function):
    """The peephole LSTM recurrence given precomputed input projections (time major)."""

    @staticmethod
    def forward(
        ctx: Any, gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, peephole: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Run the recurrence.

        Args:
            ctx: Autograd context.
            gx: Input projections W_ih x + b, (T, B, 4H), gates i, f, g, o.
            h0: Initial hidden state, (B, H).
            c0: Initial cell state, (B, H).
            w_hh: Recurrent weight, (4H, H).
            peephole: Peephole vectors p_i, p_f, p_o, (3, H).

        Returns:
            Hidden states of every step (T, B, H) and the final cell state (B, H).
        """
        steps, batch, gates = gx.shape
        hidden = gates // 4
        hs = gx.new_empty(steps + 1, batch, hidden)  # h_0 .. h_T
        cs = gx.new_empty(steps + 1, batch, hidden)  # c_0 .. c_T
        hs[0] = h0
        cs[0] = c0
        acts = gx.new_empty(steps, batch, 4, hidden)  # i, f, g, o after their nonlinearity
        tanh_c = gx.new_empty(steps, batch, hidden)  # tanh(c_t)
        w_t = w_hh.t()
        p_if, p_o = peephole[:2], peephole[2]  # (2, H), (H,)
        # per-step views made once (unbind), not by indexing inside the loop
        gx_, hs_, cs_, tanh_c_ = gx.unbind(0), hs.unbind(0), cs.unbind(0), tanh_c.unbind(0)
        c_prev_ = cs[:-1].unsqueeze(2).unbind(0)  # (B, 1, H) each
        act_ = acts.view(steps, batch, gates).unbind(0)  # (B, 4H) each
        i_f_ = acts[:, :, :2].unbind(0)  # (B, 2, H) each
        i_, f_, g_, o_ = (acts[:, :, k].unbind(0) for k in range(4))  # (B, H) each
        for t in range(steps):
            torch.addmm(gx_[t], hs_[t], w_t, out=act_[t])
            i_f_[t].addcmul_(p_if, c_prev_[t]).sigmoid_()
            g = g_[t].tanh_()
            c = torch.mul(f_[t], cs_[t], out=cs_[t + 1]).addcmul_(i_[t], g)
            o = o_[t].addcmul_(p_o, c).sigmoid_()
            torch.mul(o, torch.tanh(c, out=tanh_c_[t]), out=hs_[t + 1])
        ctx.save_for_backward(hs, cs, acts, tanh_c, w_hh, peephole)
        return hs[1:], cs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_out: Tensor | None, grad_c_last: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Reverse loop of five ops per step; everything else is vectorised over T."""
        hs, cs, acts, tanh_c, w_hh, peephole = ctx.saved_tensors
        steps, batch, _, hidden = acts.shape
        if grad_out is None:
            grad_out = torch.zeros_like(hs[1:])
        i, f, g, o = acts.unbind(2)  # (T, B, H) each
        c_prev, c_new = cs[:-1], cs[1:]  # (T, B, H) each
        p_i, p_f, p_o = peephole.unbind(0)  # (H,) each
        # Coefficients of the reverse loop (none depends on the incoming gradient), all
        # written into one buffer: fresh large temporaries cost page faults on CPU.
        coef = acts.new_empty(steps, batch, 6, hidden)  # (T, B, 6, H)
        to_a = coef[:, :, :4]  # dc -> da_i, da_f, da_g and dh -> da_o
        to_a_i, to_a_f, to_a_g, to_a_o = to_a.unbind(2)
        to_c, to_c_prev = coef[:, :, 4], coef[:, :, 5]  # dh -> dc and dc -> dc_{t-1}
        torch.addcmul(acts, acts, acts, value=-1, out=to_a)  # sigma' = s - s^2 for i, f, o
        to_a_i.mul_(g)
        to_a_f.mul_(c_prev)
        to_a_o.mul_(tanh_c)
        torch.mul(g, g, out=to_a_g)
        torch.addcmul(i, i, to_a_g, value=-1, out=to_a_g)  # i (1 - g^2)
        torch.addcmul(o, hs[1:], tanh_c, value=-1, out=to_c).addcmul_(to_a_o, p_o)
        torch.addcmul(f, to_a_i, p_i, out=to_c_prev).addcmul_(to_a_f, p_f)
        grad_a = acts.new_empty(steps, batch, 4, hidden)  # dL/da, (T, B, 4, H)
        grad_c = torch.zeros_like(cs[0]) if grad_c_last is None else grad_c_last.clone()
        grad_h = grad_out[-1]
        to_c_, to_c_prev_, to_a_o_ = to_c.unbind(0), to_c_prev.unbind(0), to_a_o.unbind(0)
        to_a3_, grad_a3_ = to_a[:, :, :3].unbind(0), grad_a[:, :, :3].unbind(0)
        grad_a_o_, grad_out_ = grad_a[:, :, 3].unbind(0), grad_out.unbind(0)
        flat_ = grad_a.view(steps, batch, 4 * hidden).unbind(0)
        for t in range(steps - 1, -1, -1):
            grad_c = grad_c.addcmul_(grad_h, to_c_[t])
            torch.mul(to_a3_[t], grad_c.unsqueeze(1), out=grad_a3_[t])
            torch.mul(to_a_o_[t], grad_h, out=grad_a_o_[t])
            grad_c = grad_c.mul_(to_c_prev_[t])
            grad_h = torch.addmm(grad_out_[t - 1], flat_[t], w_hh) if t > 0 else flat_[t] @ w_hh
        grad_gx = grad_a.view(steps, batch, 4 * hidden)
        grad_w = grad_gx.reshape(steps * batch, 4 * hidden).t() @ hs[:-1].reshape(-1, hidden)
        # peephole gradients: products written into the spent coefficient buffer
        torch.mul(grad_a[:, :, :2], c_prev.unsqueeze(2), out=coef[:, :, :2])
        torch.mul(grad_a[:, :, 3], c_new, out=coef[:, :, 2])
        grad_p = coef[:, :, :3].sum((0, 1))  # (3, H)
        return grad_gx, grad_h, grad_c, grad_w, grad_p


class CIFGRecurrence(torch.autograd.Function):
    """The CIFG LSTM recurrence given precomputed input projections (time major)."""

    @staticmethod
    def forward(
        ctx: Any, gx: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Run the recurrence.

        Args:
            ctx: Autograd context.
            gx: Input projections W_ih x + b, (T, B, 3H), gates f, g, o.
            h0: Initial hidden state, (B, H).
            c0: Initial cell state, (B, H).
            w_hh: Recurrent weight, (3H, H).

        Returns:
            Hidden states of every step (T, B, H) and the final cell state (B, H).
        """
        steps, batch, gates = gx.shape
        hidden = gates // 3
        hs = gx.new_empty(steps + 1, batch, hidden)  # h_0 .. h_T
        cs = gx.new_empty(steps + 1, batch, hidden)  # c_0 .. c_T
        hs[0] = h0
        cs[0] = c0
        acts = gx.new_empty(steps, batch, 3, hidden)  # f, g, o after their nonlinearity
        tanh_c = gx.new_empty(steps, batch, hidden)  # tanh(c_t)
        w_t = w_hh.t()
        gx_, hs_, cs_, tanh_c_ = gx.unbind(0), hs.unbind(0), cs.unbind(0), tanh_c.unbind(0)
        act_ = acts.view(steps, batch, gates).unbind(0)  # (B, 3H) each
        f_, g_, o_ = (acts[:, :, k].unbind(0) for k in range(3))  # (B, H) each
        for t in range(steps):
            torch.addmm(gx_[t], hs_[t], w_t, out=act_[t])
            f, g, o = f_[t].sigmoid_(), g_[t].tanh_(), o_[t].sigmoid_()
            c = torch.lerp(g, cs_[t], f, out=cs_[t + 1])  # f c + (1 - f) g
            torch.mul(o, torch.tanh(c, out=tanh_c_[t]), out=hs_[t + 1])
        ctx.save_for_backward(hs, cs, acts, tanh_c, w_hh)
        return hs[1:], cs[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(
        ctx: Any, grad_out: Tensor | None, grad_c_last: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Reverse loop of five ops per step; everything else is vectorised over T."""
        hs, cs, acts, tanh_c, w_hh = ctx.saved_tensors
        steps, batch, _, hidden = acts.shape
        if grad_out is None:
            grad_out = torch.zeros_like(hs[1:])
        f, g, o = acts.unbind(2)  # (T, B, H) each
        coef = acts.new_empty(steps, batch, 4, hidden)  # (T, B, 4, H)
        to_a = coef[:, :, :3]  # dc -> da_f, da_g and dh -> da_o
        to_a_f, to_a_g, to_a_o = to_a.unbind(2)
        to_c = coef[:, :, 3]  # dh -> dc
        torch.addcmul(acts, acts, acts, value=-1, out=to_a)  # sigma' = s - s^2 for f, o
        to_a_f.mul_(cs[:-1] - g)
        torch.mul(g, g, out=to_a_g).neg_().add_(1).mul_(1 - f)  # (1 - f) (1 - g^2)
        to_a_o.mul_(tanh_c)
        torch.addcmul(o, hs[1:], tanh_c, value=-1, out=to_c)  # o (1 - tanh(c)^2)
        grad_a = acts.new_empty(steps, batch, 3, hidden)  # dL/da, (T, B, 3, H)
        grad_c = torch.zeros_like(cs[0]) if grad_c_last is None else grad_c_last.clone()
        grad_h = grad_out[-1]
        to_c_, f_, to_a_o_ = to_c.unbind(0), f.unbind(0), to_a_o.unbind(0)
        to_a2_, grad_a2_ = to_a[:, :, :2].unbind(0), grad_a[:, :, :2].unbind(0)
        grad_a_o_, grad_out_ = grad_a[:, :, 2].unbind(0), grad_out.unbind(0)
        flat_ = grad_a.view(steps, batch, 3 * hidden).unbind(0)
        for t in range(steps - 1, -1, -1):
            grad_c = grad_c.addcmul_(grad_h, to_c_[t])
            torch.mul(to_a2_[t], grad_c.unsqueeze(1), out=grad_a2_[t])
            torch.mul(to_a_o_[t], grad_h, out=grad_a_o_[t])
            grad_c = grad_c.mul_(f_[t])
            grad_h = torch.addmm(grad_out_[t - 1], flat_[t], w_hh) if t > 0 else flat_[t] @ w_hh
        grad_gx = grad_a.view(steps, batch, 3 * hidden)
        grad_w = grad_gx.reshape(steps * batch, 3 * hidden).t() @ hs[:-1].reshape(-1, hidden)
        return grad_gx, grad_h, grad_c, grad_w
