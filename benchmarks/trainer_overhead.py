"""Overhead of ``cellsearch.search.trial.trainer.train`` against a bare hand-written PyTorch loop.

Both sides train the same model (same initial weights) on the same tensors with the same
batch size, optimizer, gradient clipping and number of epochs, in one process. Runs are
interleaved (the order alternates between repetitions) and medians are reported.

Two throughputs are compared, in training samples per second:

- end to end: wall time of the whole call, from an untrained model to the last epoch.
  The bare loop does the same evaluation work as the trainer: a validation pass after
  every epoch and a test pass whenever the validation loss improves.
- training phase only: time spent in training steps (the trainer's own
  ``samples_per_second``; the bare loop times its training batches the same way).

A third line repeats the end-to-end comparison in process CPU time, which a busy shared
machine disturbs less than wall time (use ``--threads 1`` for it to mean much: idle
OpenMP threads spin and burn CPU time while they wait).

Run from the repository root::

    .venv/bin/python benchmarks/trainer_overhead.py [--seq-len 100 --hidden-size 64 ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from cellsearch.models import SequenceModel
from cellsearch.search.tasks import AddingTask, TaskData, build_task
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig


def model_builder(data: TaskData, hidden_size: int) -> Callable[[], nn.Module]:
    """Return a builder of identically initialised single-layer LSTM models."""

    def build() -> nn.Module:
        torch.manual_seed(0)
        return SequenceModel(
            "lstm", data.meta.input_size, hidden_size, output_size=data.meta.output_size
        )

    return build


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds of one run: the whole call, its training steps only, and its CPU time."""

    total: float
    train: float
    cpu: float = math.nan


Runner = Callable[[nn.Module, TaskData, TrainConfig], Timing]


def bare_loop(model: nn.Module, data: TaskData, config: TrainConfig) -> Timing:
    """A minimal training loop: randperm, slice, forward, loss, backward, clip, step."""
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    x, y, n = data.train.x, data.train.y, data.train.x.shape[0]
    train_seconds, best = 0.0, math.inf
    for _ in range(config.max_epochs):
        epoch_start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=generator)
        for i in range(0, n, config.batch_size):
            idx = perm[i : i + config.batch_size]
            optimizer.zero_grad()
            loss = F.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
            optimizer.step()
        train_seconds += time.perf_counter() - epoch_start
        model.eval()
        with torch.no_grad():
            val = F.mse_loss(model(data.val.x), data.val.y).item()
            if val < best:
                best = val
                F.mse_loss(model(data.test.x), data.test.y).item()
    return Timing(total=time.perf_counter() - start, train=train_seconds)


def trainer_run(model: nn.Module, data: TaskData, config: TrainConfig) -> Timing:
    """Time cellsearch's trainer on the same work."""
    start = time.perf_counter()
    result = train(model, data, config)
    total = time.perf_counter() - start
    return Timing(
        total=total, train=data.train.x.shape[0] * result.epochs_run / result.samples_per_second
    )


def main() -> None:
    """Parse arguments, run the interleaved measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=8000)
    parser.add_argument("--n-val", type=int, default=2000)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    spec = AddingTask(
        kind="adding",
        seq_len=args.seq_len,
        n_train=args.n_train,
        n_val=args.n_val,
        n_test=args.n_val,
    )
    data = build_task(spec, seed=0)
    config = TrainConfig(learning_rate=1e-3, batch_size=args.batch_size, max_epochs=args.epochs)
    build = model_builder(data, args.hidden_size)
    runners = {"trainer": _with_cpu_time(trainer_run), "bare": _with_cpu_time(bare_loop)}
    print(
        f"adding T={args.seq_len}, n_train={args.n_train}, n_val=n_test={args.n_val}; "
        f"SequenceModel('lstm') H={args.hidden_size}; batch {args.batch_size}; "
        f"Adam, clip 1.0; {args.epochs} epochs; "
        f"{args.repeats} interleaved repeats; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, CPU"
    )
    warmup = TrainConfig(learning_rate=1e-3, batch_size=args.batch_size, max_epochs=1)
    for run in runners.values():
        run(build(), data, warmup)
    timings: dict[str, list[Timing]] = {key: [] for key in runners}
    for repeat in range(args.repeats):
        order = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for key in order:
            timings[key].append(runners[key](build(), data, config))
    report(timings, args.n_train * args.epochs)


def report(timings: dict[str, list[Timing]], samples: int) -> None:
    """Print samples/s of both loops and their ratio, end to end and training only.

    Three estimates of the ratio: of the median rates, the median of the per-repeat
    ratios (each trainer run against the bare run next to it), and of the best rates
    (noise on a shared machine only ever adds time).
    """
    picks = (("end to end", _total), ("training only", _train), ("end to end, CPU time", _cpu))
    for label, pick in picks:
        rates = {key: [samples / pick(t) for t in runs] for key, runs in timings.items()}
        trainer, bare = rates["trainer"], rates["bare"]
        paired = [a / b for a, b in zip(trainer, bare, strict=True)]
        print(
            f"{label}: trainer median {statistics.median(trainer):.0f} samples/s "
            f"(best {max(trainer):.0f}), bare median {statistics.median(bare):.0f} "
            f"(best {max(bare):.0f}); ratio of medians "
            f"{statistics.median(trainer) / statistics.median(bare):.3f}, median paired ratio "
            f"{statistics.median(paired):.3f}, ratio of bests {max(trainer) / max(bare):.3f}"
        )


def _total(timing: Timing) -> float:
    return timing.total


def _train(timing: Timing) -> float:
    return timing.train


def _cpu(timing: Timing) -> float:
    return timing.cpu


def _with_cpu_time(run: Runner) -> Runner:
    """Wrap a runner so that its timing also records the process CPU time of the call."""

    def timed(model: nn.Module, data: TaskData, config: TrainConfig) -> Timing:
        start = time.process_time()
        timing = run(model, data, config)
        return dataclasses.replace(timing, cpu=time.process_time() - start)

    return timed


if __name__ == "__main__":
    main()
