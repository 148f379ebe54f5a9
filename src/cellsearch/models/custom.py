"""Custom gated cells written on the generic layer of :mod:`cellsearch.models.layers`.

Each cell computes the input projections of all steps in one matmul (``project``) and
does only the recurrent work inside the per-step loop (``step``). Gate order follows
PyTorch where a PyTorch counterpart exists. The custom cells carry one bias per gate
(torch's RNNs carry two, ``b_ih`` and ``b_hh``, whose sum is what matters).

:class:`LSTMCell` and :class:`GRUCell` are not registered: they reproduce nn.LSTM and
nn.GRU on this generic code path so the parity tests can check that path against the
fused kernels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cellsearch.models.layers import RecurrentCell, State
from cellsearch.models.lstm_family import CIFGRecurrence, PeepholeRecurrence
from cellsearch.models.mgu import MGURecurrence

__all__ = ["CIFGCell", "GRUCell", "IndRNNCell", "LSTMCell", "MGUCell", "PeepholeLSTMCell"]


def trains_on_cpu(cell: nn.Module, x: Tensor, state: State) -> bool:
    """Whether a run needs gradients on CPU: where the hand-written recurrences are used.

    On CUDA and under ``torch.no_grad()`` the cells keep their autograd form.
    """
    return (
        x.device.type == "cpu"
        and torch.is_grad_enabled()
        and (
            x.requires_grad
            or any(s.requires_grad for s in state)
            or any(p.requires_grad for p in cell.parameters())
        )
    )


class _GatedCell(RecurrentCell):
    """A cell with ``gates`` input-projected gates and ``recurrent`` rows of W_hh.

    Parameters: ``weight_ih`` (gates*H, I), ``bias`` (gates*H,), ``weight_hh``
    (recurrent*H, H).
    """

    gates: int = 1
    recurrent: int = 1

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(self.recurrent * hidden_size, hidden_size))

    def project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)  # (B, T, gates*H)

    def set_gate_bias(self, gate: int, value: float) -> None:
        """Set the bias of gate number ``gate`` (0-based, in the cell's gate order)."""
        hidden = self.hidden_size
        with torch.no_grad():
            self.bias[gate * hidden : (gate + 1) * hidden].fill_(value)


class LSTMCell(_GatedCell):
    """LSTM in PyTorch's layout (gates i, f, g, o); the generic-path twin of nn.LSTM.

    c' = f c + i tanh(g);  h' = o tanh(c').
    """

    gates = 4
    recurrent = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float | None = None) -> None:
        super().__init__(input_size, hidden_size)
        self.reset_parameters()
        if forget_bias is not None:
            self.set_gate_bias(1, forget_bias)

    def step(self, gx: Tensor, state: State) -> State:
        h, c = state  # (B, H) each
        gates = torch.addmm(gx, h, self.weight_hh.t())  # (B, 4H)
        i, f, _, o = torch.sigmoid(gates).chunk(4, 1)
        g = torch.tanh(gates[:, 2 * self.hidden_size : 3 * self.hidden_size])
        c = torch.addcmul(f * c, i, g)
        return o * torch.tanh(c), c


class PeepholeLSTMCell(_GatedCell):
    """LSTM with diagonal peepholes (Gers & Schmidhuber 2000), gates i, f, g, o.

    i = sigma(.. + p_i c), f = sigma(.. + p_f c), o = sigma(.. + p_o c') with c' the new cell.
    ``peephole`` is (3, H): rows p_i, p_f, p_o. Training on CPU runs through the
    hand-written :class:`~cellsearch.models.lstm_family.PeepholeRecurrence`.
    """

    gates = 4
    recurrent = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float | None = None) -> None:
        super().__init__(input_size, hidden_size)
        self.peephole = nn.Parameter(torch.empty(3, hidden_size))
        self.reset_parameters()
        if forget_bias is not None:
            self.set_gate_bias(1, forget_bias)

    def step(self, gx: Tensor, state: State) -> State:
        h, c = state  # (B, H) each
        gates = torch.addmm(gx, h, self.weight_hh.t()).view(-1, 4, self.hidden_size)  # (B, 4, H)
        peek = torch.addcmul(gates[:, :2], self.peephole[:2], c.unsqueeze(1))  # (B, 2, H)
        i, f = torch.sigmoid(peek).unbind(1)
        c = torch.addcmul(f * c, i, torch.tanh(gates[:, 2]))
        o = torch.sigmoid(torch.addcmul(gates[:, 3], self.peephole[2], c))
        return o * torch.tanh(c), c

    def use_recurrence(self, x: Tensor, state: State) -> bool:
        """Whether ``run`` takes :class:`PeepholeRecurrence`: CPU training only."""
        return trains_on_cpu(self, x, state)

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the cell; on CPU with gradients, through the hand-written recurrence.

        Elsewhere (CUDA, ``torch.no_grad()``) this is the autograd form of
        :meth:`RecurrentCell.run`, which is also the reference the tests compare against.
        """
        if not self.use_recurrence(x, state):
            return super().run(x, state)
        h0, c0 = state  # (B, H) each
        gx = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # (T, B, 4H)
        out, c = PeepholeRecurrence.apply(
            gx.contiguous(), h0.contiguous(), c0.contiguous(), self.weight_hh, self.peephole
        )  # (T, B, H), (B, H)
        return out.transpose(0, 1), (out[-1], c)  # (B, T, H)


class CIFGCell(_GatedCell):
    """Coupled input-forget gate LSTM (Greff et al. 2017), gates f, g, o; i = 1 - f.

    c' = f c + (1 - f) tanh(g);  h' = o tanh(c'). Training on CPU runs through the
    hand-written :class:`~cellsearch.models.lstm_family.CIFGRecurrence`.
    """

    gates = 3
    recurrent = 3

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float | None = None) -> None:
        super().__init__(input_size, hidden_size)
        self.reset_parameters()
        if forget_bias is not None:
            self.set_gate_bias(0, forget_bias)

    def step(self, gx: Tensor, state: State) -> State:
        h, c = state  # (B, H) each
        gates = torch.addmm(gx, h, self.weight_hh.t())  # (B, 3H)
        f, _, o = torch.sigmoid(gates).chunk(3, 1)
        g = torch.tanh(gates[:, self.hidden_size : 2 * self.hidden_size])
        c = torch.lerp(g, c, f)  # f c + (1 - f) g
        return o * torch.tanh(c), c

    def use_recurrence(self, x: Tensor, state: State) -> bool:
        """Whether ``run`` takes :class:`CIFGRecurrence`: CPU training only."""
        return trains_on_cpu(self, x, state)

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the cell; on CPU with gradients, through the hand-written recurrence."""
        if not self.use_recurrence(x, state):
            return super().run(x, state)
        h0, c0 = state  # (B, H) each
        gx = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # (T, B, 3H)
        out, c = CIFGRecurrence.apply(
            gx.contiguous(), h0.contiguous(), c0.contiguous(), self.weight_hh
        )  # (T, B, H), (B, H)
        return out.transpose(0, 1), (out[-1], c)  # (B, T, H)


class MGUCell(_GatedCell):
    """Minimal gated unit (Zhou et al. 2016), gates f, h~.

    f = sigma(W_f x + U_f h + b_f);  h~ = tanh(W_h x + U_h (f h) + b_h);  h' = (1 - f) h + f h~.
    ``weight_hh`` rows: U_f then U_h. Training on CPU runs through the hand-written
    :class:`~cellsearch.models.mgu.MGURecurrence`.
    """

    gates = 2
    recurrent = 2

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def step(self, gx: Tensor, state: State) -> State:
        (h,) = state  # (B, H)
        hidden = self.hidden_size
        u_f, u_h = self.weight_hh[:hidden], self.weight_hh[hidden:]
        f = torch.sigmoid(torch.addmm(gx[:, :hidden], h, u_f.t()))
        candidate = torch.tanh(torch.addmm(gx[:, hidden:], f * h, u_h.t()))
        return (torch.lerp(h, candidate, f),)

    def use_recurrence(self, x: Tensor, state: State) -> bool:
        """Whether ``run`` takes :class:`MGURecurrence`: CPU training only."""
        return trains_on_cpu(self, x, state)

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """Run the cell; on CPU with gradients, through the hand-written recurrence."""
        if not self.use_recurrence(x, state):
            return super().run(x, state)
        (h0,) = state  # (B, H)
        gx = F.linear(x.transpose(0, 1), self.weight_ih, self.bias)  # (T, B, 2H)
        out = MGURecurrence.apply(gx.contiguous(), h0.contiguous(), self.weight_hh)  # (T, B, H)
        return out.transpose(0, 1), (out[-1],)  # (B, T, H)


class GRUCell(RecurrentCell):
    """GRU in PyTorch's layout (gates r, z, n, two biases); the generic-path twin of nn.GRU.

    n = tanh(W_in x + b_in + r (W_hn h + b_hn));  h' = (1 - z) n + z h.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        self.reset_parameters()

    def project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias_ih)  # (B, T, 3H)

    def step(self, gx: Tensor, state: State) -> State:
        (h,) = state  # (B, H)
        split = 2 * self.hidden_size
        gh = torch.addmm(self.bias_hh, h, self.weight_hh.t())  # (B, 3H)
        r, z = torch.sigmoid(gx[:, :split] + gh[:, :split]).chunk(2, 1)
        n = torch.tanh(torch.addcmul(gx[:, split:], r, gh[:, split:]))
        return (torch.lerp(n, h, z),)


class IndRNNCell(RecurrentCell):
    """Independently recurrent network (Li et al. 2018).

    h' = relu(W x + u h + b), u a vector whose entries are clamped to
    [-recurrent_max, recurrent_max] in every forward pass (differentiable inside the
    bound). W and b start from U(-1/sqrt(H), 1/sqrt(H)); u from U(0, 1) clamped to the
    bound, i.e. non-negative as in the paper's experiments.

    Args:
        input_size: Features per input step.
        hidden_size: Features of the state.
        recurrent_max: Bound on |u|; None means 1.0 (no growth of a state through u).
    """

    def __init__(
        self, input_size: int, hidden_size: int, recurrent_max: float | None = None
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.recurrent_max = 1.0 if recurrent_max is None else float(recurrent_max)
        if self.recurrent_max <= 0.0:
            raise ValueError(f"recurrent_max must be positive, got {self.recurrent_max}")
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size))  # u, the diagonal recurrence
        self.reset_parameters()
        with torch.no_grad():
            self.weight_hh.uniform_(0.0, 1.0).clamp_(max=self.recurrent_max)

    def project(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ih, self.bias)  # (B, T, H)

    def recurrent_weight(self) -> Tensor:
        """u clamped to [-recurrent_max, recurrent_max], (H,)."""
        return self.weight_hh.clamp(-self.recurrent_max, self.recurrent_max)

    def step(self, gx: Tensor, state: State) -> State:
        return (torch.relu(torch.addcmul(gx, self.recurrent_weight(), state[0])),)

    def run(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        gx = self.project(x)  # (B, T, H)
        u = self.recurrent_weight()  # clamp once per sequence, not per step
        h = state[0]
        outputs = []
        for gx_t in gx.unbind(1):
            h = torch.relu(torch.addcmul(gx_t, u, h))
            outputs.append(h)
        return torch.stack(outputs, 1), (h,)
