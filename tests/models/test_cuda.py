"""Every registered cell on CUDA against the float64 CPU reference, forward and backward.

The CUDA side runs in float32 with TF32 off (cuDNN's RNNs may use TF32 by default, which
is a precision choice, not a bug of the path under test); the reference is a float64 copy
of the same weights on the same inputs, on CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import Tensor

from cellsearch.models import CELLS, get_cell
from cellsearch.models.custom import MGUCell
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack, RecurrentStack
from cellsearch.models.minimal import MinGRUCell, MinLSTMCell

pytestmark = pytest.mark.cuda

BATCH, STEPS, INPUT, HIDDEN, LAYERS = 6, 40, 5, 24, 2


@pytest.fixture(autouse=True)
def ieee_float32() -> Iterator[None]:
    """Full float32 in cuDNN's RNNs and in matmuls for the test, restored afterwards."""
    if not hasattr(torch.backends.cudnn, "rnn"):  # torch < 2.9: the older switches
        saved_flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        yield
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved_flags
        return
    rnn: Any = torch.backends.cudnn.rnn  # untyped in torch's stubs
    matmul: Any = torch.backends.cuda.matmul
    saved = (rnn.fp32_precision, matmul.fp32_precision)
    rnn.fp32_precision, matmul.fp32_precision = "ieee", "ieee"
    yield
    rnn.fp32_precision, matmul.fp32_precision = saved


def _run(
    stack: RecurrentStack, inputs: list[Tensor], device: str, dtype: torch.dtype
) -> list[Tensor]:
    """Output, final state and the gradients of a fixed loss, as float64 CPU tensors."""
    model = copy.deepcopy(stack).to(device=device, dtype=dtype)
    x, weight, *state = (t.to(device=device, dtype=dtype) for t in inputs)
    leaves = [x.requires_grad_(), *(s.requires_grad_() for s in state)]
    output, final = model(x, tuple(state))  # (B, T, H), L x (L, B, H)
    loss = (output * weight).sum() + sum(f.square().sum() for f in final)
    grads = torch.autograd.grad(loss, [*leaves, *model.parameters()])
    return [t.detach().cpu().double() for t in (output, *final, *grads)]


@pytest.mark.parametrize("name", sorted(CELLS))
def test_cell_on_cuda_matches_the_float64_cpu_reference(name: str) -> None:
    torch.manual_seed(0)
    stack = get_cell(name).build(INPUT, HIDDEN, LAYERS)
    inputs = [
        torch.randn(BATCH, STEPS, INPUT),  # x
        torch.randn(BATCH, STEPS, HIDDEN),  # weight of the output in the loss
        *(0.5 * torch.randn(LAYERS, BATCH, HIDDEN) for _ in stack.state_layout),  # any sign
    ]
    got = _run(stack, inputs, "cuda", torch.float32)
    want = _run(stack, inputs, "cpu", torch.float64)
    assert len(got) == len(want)
    for index, (g, w) in enumerate(zip(got, want, strict=True)):
        scale = max(1.0, float(w.abs().max()))  # relative above magnitude 1
        error = float((g - w).abs().max())
        assert error <= 1e-4 * scale, f"tensor {index}: error {error:.2e}, scale {scale:.2e}"


@pytest.mark.parametrize("cell", [MinGRUCell, MinLSTMCell])
def test_minimal_cells_take_the_log_space_scan_on_cuda(cell: type[MinGRUCell]) -> None:
    x = torch.randn(2, STEPS, INPUT, device="cuda")
    assert cell(INPUT, HIDDEN).cuda().form(x) == "scan"
    assert cell(INPUT, HIDDEN).form(x.cpu()) == "recurrence"


def test_fused_and_custom_cells_keep_their_autograd_paths_on_cuda() -> None:
    x = torch.randn(2, STEPS, INPUT, device="cuda", requires_grad=True)
    gru = get_cell("gru").build(INPUT, HIDDEN).cuda()
    assert isinstance(gru, GRUStack) and not gru._use_cpu_path(x)  # cuDNN, not GRURecurrence
    mgu = get_cell("mgu").build(INPUT, HIDDEN).cuda()
    assert isinstance(mgu, CellStack)
    cell = mgu.cells[0]
    assert isinstance(cell, MGUCell)
    state = (torch.zeros(2, HIDDEN, device="cuda"),)
    assert not cell.use_recurrence(x, state)
