"""How to use a machine's CPUs: more worker processes, or more torch threads per worker?

For each workload, every combination of local workers x torch threads per worker that
fits the machine's usable CPUs (on 2 cores: 1x1, 1x2, 2x1) runs one study to completion
through real ``cellsearch worker`` processes on a fresh SQLite database, idle and again
with a competing CPU load that this script starts itself (busy-looping processes on half
the CPUs, at least one). Reported: trials per minute and the trials' median training
seconds. Workers are started and registered before the study is created, so process
start-up is not timed (see benchmarks/workers.py, whose helpers this reuses).

Workloads:

- ``quickstart``: examples/quickstart.yaml as the README gives it (30 trials);
- ``adding100``: examples/adding-t100.yaml with 6 trials of 3 epochs (its model sizes);
- ``large``: adding T=100, two layers of 256 LSTM/GRU units, 4 trials of 2 epochs, to see
  whether large models gain from intra-op threads.

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
        "adding100": _spec(
            "adding-t100",
            budget={"n_trials": 3 if quick else 6, "max_epochs": 2 if quick else 3},
            pruner="none",
        ),
        "large": _spec(
            "adding-t100",
            name="adding-t100-large",
            space={
                "cell_type": ["lstm", "gru"],
                "hidden_size": 256,
                "num_layers": 2,
                "batch_size": 64,
                "learning_rate": 1e-3,
                "dropout": 0.0,
            },
            budget={"n_trials": 2 if quick else 4, "max_epochs": 1 if quick else 2},
            pruner="none",
        ),
    }


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


def run(spec: Any, n_workers: int, threads: int, load: int) -> tuple[float, float]:
    """Trials per minute and the median training seconds of one study."""
    with tempfile.TemporaryDirectory() as tmp, sqlite_database(Path(tmp)) as db:
        env = {"CELLSEARCH_TORCH_THREADS": str(threads)}
        with competing_load(load), workers(db, n_workers, Path(tmp), env) as procs:
            seconds = time_cellsearch(db, spec, procs)
        return 60.0 * spec.budget.n_trials / seconds, median_training_seconds(db.url, spec.name)


def main() -> None:
    from cellsearch.search.worker.cpu import cgroup_cpu_quota, usable_cpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small studies: a smoke run")
    parser.add_argument("--workloads", default="quickstart,adding100,large")
    parser.add_argument("--loads", default="idle,busy", help="idle, busy or both")
    parser.add_argument("--reps", type=int, default=1, help="runs per cell of the table")
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
                        rate, median = run(specs[name], n_workers, threads, load)
                        rates.append(rate)
                        trial_seconds.append(median)
                except TimeoutError:  # so slow that the study did not finish in 10 minutes
                    slowest = 60 * specs[name].budget.n_trials / TIMEOUT_S
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
