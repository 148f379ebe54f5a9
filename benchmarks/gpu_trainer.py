"""Part (b) of benchmarks/gpu_check.py: the trainer against a bare loop, on the device.

The approach of benchmarks/trainer_overhead.py, moved to a device: both sides train the
same model (same initial weights) on the same tensors with the same batch size, Adam
(fused on CUDA, as the trainer builds it), gradient clipping and epochs; both move the
data to the device once, synchronise once per epoch, validate after every epoch and
evaluate the test set when the validation loss improves. Runs alternate which side goes
first; medians are reported. The data are built here with torch (the adding problem), not through
the task registry, so that this part needs torch alone.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cellsearch.models import SequenceModel
from cellsearch.search.tasks.data import Split, TaskData, TaskMeta
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import Precision, TrainConfig
from gpu_table import Section, progress

TARGET = 0.95  # trainer samples/s over bare-loop samples/s


def adding_data(n_train: int, n_eval: int, steps: int, seed: int = 0) -> TaskData[Tensor]:
    """Inputs: a value from U(0, 1) and a marker set once in each half; target: the sum."""
    generator = torch.Generator().manual_seed(seed)

    def split(n: int) -> tuple[Tensor, Tensor]:
        values = torch.rand(n, steps, generator=generator)  # (n, T)
        first = torch.randint(0, steps // 2, (n,), generator=generator)
        second = torch.randint(steps // 2, steps, (n,), generator=generator)
        marks = torch.zeros(n, steps)
        marks[torch.arange(n), first] = marks[torch.arange(n), second] = 1.0
        return torch.stack([values, marks], -1), (values * marks).sum(1, keepdim=True)

    meta = TaskMeta(2, 1, "last", "mse", "mse", baseline=1 / 6, baseline_description="")
    train_, val, test = (Split(*split(n)) for n in (n_train, n_eval, n_eval))
    return TaskData(meta, train_, val, test)


@dataclass(frozen=True)
class Sizes:
    """The workload of one comparison."""

    n_train: int
    n_eval: int
    steps: int
    hidden: int
    batch: int
    epochs: int
    repeats: int


FULL = Sizes(n_train=8192, n_eval=1024, steps=100, hidden=64, batch=64, epochs=2, repeats=5)
QUICK = Sizes(n_train=512, n_eval=128, steps=20, hidden=16, batch=32, epochs=1, repeats=3)


@dataclass(frozen=True)
class Timing:
    """Seconds of one run: the whole call and its training steps only."""

    total: float
    train: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_loop(
    model: nn.Module, data: TaskData[Tensor], config: TrainConfig, device: torch.device
) -> Timing:
    """A minimal loop: randperm, slice, forward (autocast for bf16 on CUDA), MSE, step."""
    _sync(device)
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device)
    x, y, x_val, y_val, x_test, y_test = (t.to(device) for t in (
        data.train.x, data.train.y, data.val.x, data.val.y, data.test.x, data.test.y))  # fmt: skip
    params = list(model.parameters())
    optimizer = torch.optim.Adam(
        params, lr=config.learning_rate, fused=device.type == "cuda" or None
    )
    autocast = config.precision == "bf16" and device.type == "cuda"
    n, train_seconds, best = x.shape[0], 0.0, math.inf
    for _ in range(config.max_epochs):
        epoch_start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                prediction = model(x[idx])
            loss = F.mse_loss(prediction.float(), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(params, config.grad_clip or math.inf)
            optimizer.step()
        loss.item()  # one synchronisation per epoch, as the trainer's finiteness check
        train_seconds += time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            val = F.mse_loss(model(x_val).float(), y_val).item()
            if val < best:
                best = val
                F.mse_loss(model(x_test).float(), y_test).item()
    _sync(device)
    return Timing(total=time.perf_counter() - start, train=train_seconds)


def trainer_run(
    model: nn.Module, data: TaskData[Tensor], config: TrainConfig, device: torch.device
) -> Timing:
    """The trainer on the same work; its training time from its own samples/s."""
    _sync(device)
    start = time.perf_counter()
    result = train(model, data, config, device)
    _sync(device)
    samples = data.train.x.shape[0] * result.epochs_run
    return Timing(total=time.perf_counter() - start, train=samples / result.samples_per_second)


def compare(cell: str, precision: Precision, size: Sizes, device: torch.device) -> list[str]:
    """One table row: both sides' median samples/s and the ratios."""
    data = adding_data(size.n_train, size.n_eval, size.steps)
    config = TrainConfig(learning_rate=1e-3, batch_size=size.batch, max_epochs=size.epochs,
                         precision=precision)  # fmt: skip

    def build() -> nn.Module:
        torch.manual_seed(0)
        return SequenceModel(
            cell, data.meta.input_size, size.hidden, output_size=data.meta.output_size
        )

    sides = {"trainer": trainer_run, "bare": bare_loop}
    warm_up = TrainConfig(learning_rate=1e-3, batch_size=size.batch, max_epochs=1,
                          precision=precision)  # fmt: skip
    for run in sides.values():
        run(build(), data, warm_up, device)
    timings: dict[str, list[Timing]] = {side: [] for side in sides}
    for repeat in range(size.repeats):
        for side in list(sides) if repeat % 2 == 0 else list(reversed(sides)):
            timings[side].append(sides[side](build(), data, config, device))
    samples = size.n_train * size.epochs
    train_rate = {k: [samples / t.train for t in v] for k, v in timings.items()}
    total_rate = {k: [samples / t.total for t in v] for k, v in timings.items()}
    trainer, bare = (statistics.median(train_rate[k]) for k in sides)
    paired = statistics.median(a / b for a, b in zip(*train_rate.values(), strict=True))
    end_to_end = statistics.median(total_rate["trainer"]) / statistics.median(total_rate["bare"])
    ratio = trainer / bare
    return [cell, precision, f"{trainer:.0f}", f"{bare:.0f}", f"{ratio:.3f}", f"{paired:.3f}",
            f"{end_to_end:.3f}", "yes" if ratio >= TARGET else "NO"]  # fmt: skip


def part_b(device: torch.device, quick: bool) -> Section:
    """The trainer's samples/s over a bare loop's, fp32 (and bf16 on CUDA)."""
    size = QUICK if quick else FULL
    section = Section("b", "trainer samples/s vs bare hand-written loop")
    section.columns = ["model", "precision", "trainer samples/s", "bare samples/s",
                       "ratio of medians", "median paired ratio", "end-to-end ratio",
                       f">= {TARGET:g}"]  # fmt: skip
    precisions: tuple[Precision, ...] = ("fp32", "bf16") if device.type == "cuda" else ("fp32",)
    for cell in ("lstm", "mingru"):
        for precision in precisions:
            try:
                row = compare(cell, precision, size, device)
            except Exception as exc:  # bf16 may be unsupported by a kernel: report, go on
                row = [cell, precision, f"error: {type(exc).__name__}: {exc}"[:300]] + [""] * 4
                row.append("NO")
            section.rows.append(row)
            progress(f"  (b) {cell} {precision}: ratio {row[4] or row[2]}")
    failed = any(row[-1] == "NO" for row in section.rows)
    section.verdict = "info" if quick else ("fail" if failed else "pass")
    section.notes += [
        f"adding task T={size.steps}, {size.n_train} training and {size.n_eval} validation/test "
        f"sequences, SequenceModel(cell, 2, {size.hidden}), batch {size.batch}, Adam lr 1e-3 "
        f"(fused on CUDA), clip 1.0, {size.epochs} epochs; {size.repeats} interleaved repeats "
        "after one warm-up run of each side.",
        "ratios use training-phase samples/s (the trainer's own samples_per_second); "
        "'end-to-end' times the whole call, evaluation included. bf16: autocast on both sides.",
    ]
    if quick:
        section.notes.append("--quick: sizes too small for the target to mean much; not judged.")
    return section
