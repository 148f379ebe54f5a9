"""How to use a machine's CPUs: more worker processes, or more torch threads per worker?

For each workload, every combination of local workers x torch threads per worker that
fits the machine's usable CPUs (on 2 cores: 1x1, 1x2, 2x1) runs one study to completion
through real ``cellsearch worker`` processes on a fresh SQLite database, idle and again
with a competing CPU load that this script starts itself (busy-looping processes on half
the CPUs, at least one). Reported: trials per minute and the trials' median training
seconds (for ``large``: training steps per minute and seconds per step). Workers are
started and registered before the study is created, so process start-up is not timed
(see benchmarks/workers.py, whose helpers this reuses).

Workloads:

- ``quickstart``: examples/quickstart.yaml as the README gives it (30 trials);
- ``adding100``: examples/adding-t100.yaml at the design's size (8000 sequences, up to two
  layers of 256 units) with 6 trials of 3 epochs;
- ``large``: whether large models gain from intra-op threads. Trials of two layers of 256
  LSTM units at T=100 take minutes each on 2 cores, so this one counts training steps
  (batch 64, Adam) per minute instead of trials, each process training its own model.

Run from the repository root::

    .venv/bin/python benchmarks/cpu_parallelism.py              # every workload, both loads
    .venv/bin/python benchmarks/cpu_parallelism.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from workers import (
    TIMEOUT_S,
    median_training_seconds,
    sqlite_database,
    time_cellsearch,
    workers,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _spec(example: str, **changes: Any) -> Any:
    """An example spec with some of its sections changed (dicts are merged)."""
    from cellsearch.search.study.limits import parse_spec

    data = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return parse_spec(data)


def workloads(quick: bool) -> dict[str, Any]:
    """The studies to time, by name (smaller with ``quick``)."""
    trials = 6 if quick else 30
    return {
        "quickstart": _spec("quickstart", budget={"n_trials": trials, "max_epochs": 10}),
        # the reference study at the design's size (its example is smaller), no pruning
        "adding100": _spec(
            "adding-t100",
            task={"n_train": 8000, "n_val": 2000, "n_test": 2000},
            space={
                "hidden_size": {"low": 16, "high": 256, "log": True},
                "num_layers": {"low": 1, "high": 2},
                "batch_size": [32, 64, 128],
                "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
            },
            budget={"n_trials": 3 if quick else 6, "max_epochs": 2 if quick else 3},
            pruner="none",
            reevaluate=None,
        ),
    }


LARGE = {"hidden": 256, "layers": 2, "batch": 64, "seq_len": 100}


def _training_steps(threads: int, steps: int, out: Any) -> None:
    """Time ``steps`` Adam steps of the large model (two layers of 256 LSTM units on a
    batch of 64 adding sequences of length 100) on ``threads`` torch threads."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(2, LARGE["hidden"], num_layers=LARGE["layers"], batch_first=True)
    head = torch.nn.Linear(LARGE["hidden"], 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
    x, y = torch.randn(LARGE["batch"], LARGE["seq_len"], 2), torch.randn(LARGE["batch"], 1)

    def step() -> None:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(head(lstm(x)[0][:, -1]), y)
        loss.backward()
        optimizer.step()

    step()  # first-call costs are not timed
    start = time.perf_counter()
    for _ in range(steps):
        step()
    out.put(time.perf_counter() - start)


def large_steps(n_workers: int, threads: int, load: int, steps: int) -> tuple[float, float]:
    """Training steps per minute of the large model, all processes together, and the
    median seconds of one step; each process trains its own copy, as workers would."""
    out: Any = multiprocessing.Queue()
    with competing_load(load):
        procs = [
            multiprocessing.Process(target=_training_steps, args=(threads, steps, out))
            for _ in range(n_workers)
        ]
        for proc in procs:
            proc.start()
        seconds = [out.get(timeout=TIMEOUT_S) for _ in procs]
        for proc in procs:
            proc.join()
    return 60.0 * n_workers * steps / max(seconds), statistics.median(seconds) / steps


def configurations(cpus: int) -> list[tuple[int, int]]:
    """(workers, threads per worker) pairs that fit ``cpus``: every product <= cpus."""
    pairs = [(w, t) for w, t in itertools.product(range(1, cpus + 1), repeat=2) if w * t <= cpus]
    return sorted(pairs, key=lambda p: (-p[0] * p[1], -p[0]))


def _spin() -> None:
    while True:
        pass


@contextmanager
def competing_load(processes: int) -> Iterator[None]:
    """``processes`` busy-looping processes for the duration (none for 0)."""
    procs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(processes)]
    for proc in procs:
        proc.start()
    try:
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def run(spec: Any, n_workers: int, threads: int, load: int, timeout: float) -> tuple[float, float]:
    """Trials per minute and the median training seconds of one study."""
    with tempfile.TemporaryDirectory() as tmp, sqlite_database(Path(tmp)) as db:
        env = {"CELLSEARCH_TORCH_THREADS": str(threads)}
        with competing_load(load), workers(db, n_workers, Path(tmp), env) as procs:
            seconds = time_cellsearch(db, spec, procs, timeout=timeout)
        return 60.0 * spec.budget.n_trials / seconds, median_training_seconds(db.url, spec.name)


def main() -> None:
    from cellsearch.search.worker.cpu import cgroup_cpu_quota, usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small studies: a smoke run")
    parser.add_argument("--workloads", default="quickstart,adding100,large")
    parser.add_argument("--loads", default="idle,busy", help="idle, busy or both")
    parser.add_argument("--reps", type=int, default=1, help="runs per cell of the table")
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_S, help="seconds before a study counts as too slow"
    )
    parser.add_argument("--steps", type=int, default=30, help="training steps per large run")
    args = parser.parse_args()
    cpus = usable_cpus(cgroup_cpu_quota())
    busy = max(1, cpus // 2)
    specs = workloads(args.quick)
    print(f"{cpus} usable CPUs; competing load: {busy} busy process(es)\n")
    print("| workload | load | workers x threads | trials/min | median trial s |")
    print("|---|---|---|---|---|")
    for name in args.workloads.split(","):
        for load_name in args.loads.split(","):
            load = busy if load_name == "busy" else 0
            for n_workers, threads in configurations(cpus):
                rates, trial_seconds = [], []
                try:
                    for _ in range(args.reps):
                        if name == "large":
                            rate, median = large_steps(n_workers, threads, load, args.steps)
                        else:
                            rate, median = run(specs[name], n_workers, threads, load, args.timeout)
                        rates.append(rate)
                        trial_seconds.append(median)
                except TimeoutError:  # so slow that the study did not finish in time
                    assert name != "large"
                    slowest = 60 * specs[name].budget.n_trials / args.timeout
                    row = (
                        f"| {name} | {load_name} | {n_workers} x {threads} | < {slowest:.1f} | - |"
                    )
                    print(row, flush=True)
                    continue
                print(
                    f"| {name} | {load_name} | {n_workers} x {threads} "
                    f"| {statistics.median(rates):.1f} | {statistics.median(trial_seconds):.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
