"""Forward+backward time of every registered cell relative to fused nn.LSTM.

Run from the repository root::

    python benchmarks/cells.py                 # CPU, B=64 T=100 H=64
    python benchmarks/cells.py --device cuda

Repetitions are interleaved across cells (machines are noisy) and medians reported.
A second table times minGRU/minLSTM's log-space parallel scan and their linear
recurrence with a hand-written backward against their own sequential loop at several
sequence lengths.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from cellsearch.models import CELLS, get_cell
from cellsearch.models.custom import PeepholeLSTMCell
from cellsearch.models.layers import CellStack, RecurrentCell
from cellsearch.models.minimal import MinGRUCell, MinLSTMCell, ScanMode

Job = Callable[[], Tensor]
MODES: tuple[ScanMode, ...] = ("scan", "recurrence", "sequential")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_jobs(jobs: dict[str, Job], repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of forward+backward per job, repetitions interleaved across jobs."""
    samples: dict[str, list[float]] = {name: [] for name in jobs}
    for rep in range(repeats + 1):  # the first round warms up and is dropped
        for name, job in jobs.items():
            _sync(device)
            start = time.perf_counter()
            job().sum().backward()
            _sync(device)
            if rep > 0:
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def cell_jobs(batch: int, steps: int, hidden: int, device: torch.device) -> dict[str, Job]:
    """One job per registered cell, plus the paths they replace on CPU, for comparison.

    "gru (nn.GRU kernel)" is torch's fused GRU; "lstm_peephole (autograd)" the peephole
    LSTM's per-step autograd form (:meth:`RecurrentCell.run`).
    """
    x = torch.randn(batch, steps, hidden, device=device)
    jobs: dict[str, Job] = {}
    for name in CELLS:
        stack = get_cell(name).build(hidden, hidden).to(device)
        jobs[name] = lambda stack=stack: stack(x)[0]  # type: ignore[misc]
    fused_gru = nn.GRU(hidden, hidden, batch_first=True).to(device)
    jobs["gru (nn.GRU kernel)"] = lambda: fused_gru(x)[0]
    peephole = get_cell("lstm_peephole").build(hidden, hidden).to(device)
    assert isinstance(peephole, CellStack)
    cell = peephole.cells[0]
    assert isinstance(cell, PeepholeLSTMCell)
    h0 = torch.zeros(batch, hidden, device=device)
    jobs["lstm_peephole (autograd)"] = lambda: RecurrentCell.run(cell, x, (h0, h0))[0]
    return jobs


def scan_jobs(batch: int, steps: int, hidden: int, device: torch.device) -> dict[str, Job]:
    """minGRU/minLSTM over one sequence length: scan, recurrence and sequential loop."""
    x = torch.randn(batch, steps, hidden, device=device)
    h0 = torch.zeros(batch, hidden, device=device)
    jobs: dict[str, Job] = {}
    for cell_type in (MinGRUCell, MinLSTMCell):
        for mode in MODES:
            cell: RecurrentCell = cell_type(hidden, hidden, mode=mode).to(device)
            key = f"{cell_type.__name__} {mode}"
            jobs[key] = lambda cell=cell: cell.run(x, (h0,))[0]  # type: ignore[misc]
    return jobs


def main() -> None:
    """Parse arguments, run both benchmarks and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--scan-steps", type=int, nargs="*", default=[100, 512, 1024])
    parser.add_argument("--scan-repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"B={args.batch} T={args.steps} H={args.hidden} (input size H), forward+backward"
    )
    times = time_jobs(cell_jobs(args.batch, args.steps, args.hidden, device), args.repeats, device)
    base = times["lstm"]
    print("\n| cell | ms | x fused LSTM |\n|---|---:|---:|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds * 1e3:.1f} | {seconds / base:.2f} |")
    print(
        "\n| T | cell | scan ms | recurrence ms | sequential ms | sequential / scan "
        "| sequential / recurrence |\n|---:|---|---:|---:|---:|---:|---:|"
    )
    for steps in args.scan_steps:
        jobs = scan_jobs(args.batch, steps, args.hidden, device)
        scan = time_jobs(jobs, args.scan_repeats, device)
        for cell_type in ("MinGRUCell", "MinLSTMCell"):
            s, r, q = (scan[f"{cell_type} {mode}"] for mode in MODES)
            print(
                f"| {steps} | {cell_type} | {s * 1e3:.1f} | {r * 1e3:.1f} | {q * 1e3:.1f} "
                f"| {q / s:.2f} | {q / r:.2f} |"
            )


if __name__ == "__main__":
    main()
