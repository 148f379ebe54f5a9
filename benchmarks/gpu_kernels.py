"""Parts (a), (b) and (d) of benchmarks/gpu_check.py; they need torch alone.

(a) Every registered cell, forward and backward, on the device in float32 against a
float64 copy on CPU. (b) The trainer's training throughput against a bare hand-written
loop on the same model and data. (d) minGRU/minLSTM's log-space scan against their
sequential loop. Only :mod:`cellsearch.models`, the trainer (whose task types are
annotations only) and benchmarks/cells.py are imported: no Optuna, SQLAlchemy or pydantic.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from cells import scan_jobs, time_jobs
from cellsearch.models import CELLS, get_cell
from cellsearch.models.gru import GRUStack
from cellsearch.models.layers import CellStack, FusedStack, RecurrentStack, State
from gpu_table import Section, progress

TOLERANCE = 1e-4  # max abs error / max(1, max |reference|), float32 against float64
SCAN_TARGET = 0.2  # scan time / loop time on CUDA from T = 2048 on
SCAN_TARGET_STEPS = 2048


@dataclass(frozen=True)
class ParitySizes:
    """Sizes of the parity run: batch, steps, input features, hidden units, layers."""

    batch: int
    steps: int
    inputs: int
    hidden: int
    layers: int


FULL_PARITY = ParitySizes(batch=16, steps=64, inputs=8, hidden=48, layers=2)
QUICK_PARITY = ParitySizes(batch=3, steps=10, inputs=5, hidden=8, layers=2)


@contextlib.contextmanager
def ieee_float32() -> Iterator[None]:
    """TF32 off in cuDNN's RNNs and in matmuls (full float32), restored afterwards."""
    if not hasattr(torch.backends.cudnn, "rnn"):  # torch < 2.9: the older switches
        saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
        return
    rnn: Any = torch.backends.cudnn.rnn  # untyped in torch's stubs
    matmul: Any = torch.backends.cuda.matmul
    before = (rnn.fp32_precision, matmul.fp32_precision)
    rnn.fp32_precision, matmul.fp32_precision = "ieee", "ieee"
    try:
        yield
    finally:
        rnn.fp32_precision, matmul.fp32_precision = before


def float32_defaults() -> str:
    """The process's float32 settings for cuDNN RNNs and matmuls, in words."""
    if hasattr(torch.backends.cudnn, "rnn"):
        rnn: Any = torch.backends.cudnn.rnn  # untyped in torch's stubs
        matmul: Any = torch.backends.cuda.matmul
        return f"cuDNN RNN {rnn.fp32_precision}, matmul {matmul.fp32_precision}"
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    return "cuDNN allow_tf32 {}, matmul allow_tf32 {}".format(*flags)


def path_of(stack: RecurrentStack, x: Tensor, state: State) -> str:
    """The code path ``stack(x, state)`` takes: a fused kernel, the scan or a recurrence."""
    if isinstance(stack, GRUStack) and stack._use_cpu_path(x):
        return "GRURecurrence (hand-written)"
    if isinstance(stack, FusedStack):
        kernel = "cuDNN" if x.is_cuda and torch.backends.cudnn.is_available() else "aten"
        return f"fused nn.{type(stack.rnn).__name__} ({kernel})"
    assert isinstance(stack, CellStack)
    cell: Any = stack.cells[0]
    if hasattr(cell, "form"):  # minGRU, minLSTM
        forms = {"scan": "log-space scan", "recurrence": "MinimalRecurrence (hand-written)"}
        return forms.get(cell.form(x), "step loop (autograd)")
    if hasattr(cell, "use_recurrence") and cell.use_recurrence(x, tuple(s[0] for s in state)):
        return f"{type(cell).__name__} recurrence (hand-written)"
    return "step loop (autograd)"


def run_cell(
    stack: RecurrentStack, inputs: list[Tensor], device: torch.device, dtype: torch.dtype
) -> tuple[str, list[tuple[str, Tensor]]]:
    """Forward and backward of a copy of ``stack``; the path taken and every result.

    ``inputs`` are x (B, T, I), the weight of the output in the loss (B, T, H) and the
    initial state (one (L, B, H) tensor per state entry). The loss is
    sum(output * weight) + sum(final state ** 2); the results are the output, the final
    state and the gradients of x, the initial state and every parameter, as float64 CPU.
    """
    model = copy.deepcopy(stack).to(device=device, dtype=dtype)
    x, weight, *state = (t.to(device=device, dtype=dtype) for t in inputs)
    leaves = [x.requires_grad_(), *(s.requires_grad_() for s in state)]
    path = path_of(model, x, tuple(state))
    output, final = model(x, tuple(state))  # (B, T, H), each (L, B, H)
    loss = (output * weight).sum() + sum(f.square().sum() for f in final)
    grads = torch.autograd.grad(loss, [*leaves, *model.parameters()])
    layout = model.state_layout
    names = ["output", *(f"final {n}" for n in layout), "d x", *(f"d {n}0" for n in layout)]
    names += [f"d {name}" for name, _ in model.named_parameters()]
    values = [output, *final, *grads]
    return path, [(n, v.detach().cpu().double()) for n, v in zip(names, values, strict=True)]


def relative_errors(got: list[tuple[str, Tensor]], want: list[tuple[str, Tensor]]) -> list[Any]:
    """(name, max abs error, error / max(1, max |reference|)) per result."""
    rows = []
    for (name, g), (_, w) in zip(got, want, strict=True):
        error = float((g - w).abs().max())
        rows.append((name, error, error / max(1.0, float(w.abs().max()))))
    return rows


def part_a(device: torch.device, quick: bool) -> Section:
    """Every registered cell against the float64 CPU reference."""
    size = QUICK_PARITY if quick else FULL_PARITY
    section = Section("a", "cells forward+backward vs float64 CPU reference")
    section.columns = [
        "cell", "device path (float32)", "reference path (float64, CPU)", "output err",
        "worst gradient err", "err, TF32 defaults", "pass",
    ]  # fmt: skip
    for name in CELLS:
        torch.manual_seed(0)
        stack = get_cell(name).build(size.inputs, size.hidden, size.layers)
        inputs = [torch.randn(size.batch, size.steps, size.inputs),
                  torch.randn(size.batch, size.steps, size.hidden),
                  *(0.5 * torch.randn(size.layers, size.batch, size.hidden)
                    for _ in stack.state_layout)]  # fmt: skip
        reference_path, want = run_cell(stack, inputs, torch.device("cpu"), torch.float64)
        with ieee_float32():
            path, got = run_cell(stack, inputs, device, torch.float32)
        errors = relative_errors(got, want)
        outputs = [e for e in errors if not e[0].startswith("d ")]
        grads = [e for e in errors if e[0].startswith("d ")]
        worst = max(grads, key=lambda e: e[2])
        loose = "-"
        if device.type == "cuda":  # the same with the process's TF32 settings, for the record
            _, default_run = run_cell(stack, inputs, device, torch.float32)
            loose = f"{max(e[2] for e in relative_errors(default_run, want)):.1e}"
        ok = all(e[2] <= TOLERANCE for e in errors)
        output_error = f"{max(e[1] for e in outputs):.1e}"
        section.rows.append(
            [name, path, reference_path, output_error, f"{worst[1]:.1e} ({worst[0]})", loose,
             "yes" if ok else "NO"]
        )  # fmt: skip
        if not ok:
            bad = ", ".join(f"{n} {e:.1e}" for n, e, r in errors if r > TOLERANCE)
            section.notes.append(f"{name}: over tolerance: {bad}")
        progress(f"  (a) {name}: {path}, worst gradient {worst[1]:.1e} ({worst[0]})")
    failed = any(row[-1] == "NO" for row in section.rows)
    section.verdict = "fail" if failed else "pass"
    section.notes += [
        f"B={size.batch} T={size.steps} I={size.inputs} H={size.hidden}, {size.layers} layers, "
        "random initial state of either sign; loss sum(output * w) + sum(final state^2).",
        f"pass: every result's max abs error <= {TOLERANCE:g} x max(1, max |reference|) "
        "(relative above magnitude 1); the device side runs with TF32 off.",
        "'err, TF32 defaults': the largest such relative error with the process's own "
        f"float32 settings ({float32_defaults()}), for the record, not judged.",
    ]
    return section


def part_d(device: torch.device, quick: bool) -> Section:
    """minGRU/minLSTM: log-space scan against the sequential loop (forward+backward)."""
    lengths = (64, 128, 256) if quick else (512, 2048, 8192)
    batch, hidden, repeats = (8, 16, 2) if quick else (64, 64, 3)
    section = Section("d", "minGRU/minLSTM log-space scan vs sequential loop")
    section.columns = ["T", "cell", "scan ms", "hand-written recurrence ms", "sequential loop ms",
                       "scan / loop", f"target < {SCAN_TARGET:g}"]  # fmt: skip
    judged = device.type == "cuda"
    for steps in lengths:
        times = time_jobs(scan_jobs(batch, steps, hidden, device), repeats, device)
        for cell in ("MinGRUCell", "MinLSTMCell"):
            scan, recurrence, loop = (
                times[f"{cell} {m}"] for m in ("scan", "recurrence", "sequential")
            )
            ratio = scan / loop
            target = "-"
            if judged and steps >= SCAN_TARGET_STEPS:
                target = "yes" if ratio < SCAN_TARGET else "NO"
            section.rows.append([str(steps), cell, f"{scan * 1e3:.1f}", f"{recurrence * 1e3:.1f}",
                                 f"{loop * 1e3:.1f}", f"{ratio:.3f}", target])  # fmt: skip
        progress(f"  (d) T={steps}: scan/loop {section.rows[-2][5]} (minGRU), "
                 f"{section.rows[-1][5]} (minLSTM)")  # fmt: skip
    if judged:
        section.verdict = "fail" if any(r[-1] == "NO" for r in section.rows) else "pass"
    section.notes += [
        f"B={batch}, H={hidden} (input size H), forward+backward, median of {repeats} "
        "interleaved repetitions after one warm-up round (benchmarks/cells.py's time_jobs).",
        f"target (CUDA only): scan / loop < {SCAN_TARGET:g} for T >= {SCAN_TARGET_STEPS}; "
        "on CPU the cells train through the hand-written recurrence, not the scan.",
    ]
    return section
