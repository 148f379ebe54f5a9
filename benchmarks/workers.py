"""Worker benchmarks: orchestration overhead per trial, and scaling from 1 to 2 workers.

1. **Overhead.** A study whose training is as small as the spec allows (adding task with
   ``seq_len`` 2, one training, validation and test sequence, hidden size 1, one epoch, no
   pruner, random sampler) is run by ``cellsearch worker`` processes, and the same study
   by the same number of bare ``study.optimize`` processes on the same database, twice:
   with an objective that trains the same model with the same trainer and reports each
   epoch (what a plain Optuna script for this trial does; the ratio to it is the
   orchestration overhead), and with one that only samples the parameters and returns a
   constant (a floor: Optuna's own cost per trial). Reported: wall seconds per trial of
   each and the ratios, the overhead also as the median (and range) of the ratios taken
   within each repetition, where the two runs are seconds apart (the machine's load
   drifts between repetitions).
2. **Scaling.** A CPU-bound study (about half a second of training per trial, one torch
   thread per worker) is run on PostgreSQL by 1 and by 2 worker processes. Reported:
   trials per second of each and their ratio, the trials' own training seconds, and the
   machine's ceiling: the speed-up of two plain training processes (no database) over one.

Workers are started and registered (idle) before a study is created, so process start-up
is never timed: a run is timed from the study's creation to the moment its record reads
``completed`` (polled every 20 ms), and a bare run from its start signal to the last
process's end of ``optimize``. Configurations are interleaved within every repetition and
medians are reported. PostgreSQL runs use a throwaway database that is dropped at the end.

3. **Idle workers, waking up, memory** (``--only idle``, ``wakeup``, ``memory``): see
   :mod:`worker_waits`.

Overhead is also reported as CPU: the CPU seconds the worker processes spent during the
timed run, against those the bare processes spent in ``optimize`` (the server's work is
in neither), a figure that moves far less than wall time on a shared machine.

Run from the repository root::

    .venv/bin/python benchmarks/workers.py --postgres-url postgresql+psycopg://USER@HOST/DB
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import worker_waits
from bare_optuna import (
    SAME_PRAGMAS,
    SAME_STORAGE,
    bare_child,
    ceiling_child,
    machine_ceiling,
    run_bare,
    run_bare_timed,
)
from worker_bench import (
    CPU_TASK,
    MIN_TASK,
    POLL_S,
    TIMEOUT_S,
    WORKER_ENV,
    Database,
    Processes,
    Run,
    Timing,
    counted_trials,
    make_spec,
    median_training_seconds,
    minimal_spec,
    postgres_database,
    run_cellsearch,
    run_cellsearch_timed,
    sqlite_database,
    time_cellsearch,
    wait_for,
    workers,
)

__all__ = [  # what the other benchmarks import from here
    "CPU_TASK", "MIN_TASK", "POLL_S", "TIMEOUT_S", "WORKER_ENV", "Processes", "Run",
    "counted_trials", "make_spec", "median_training_seconds", "run_bare", "run_cellsearch",
    "sqlite_database", "time_cellsearch", "wait_for", "workers",
]  # fmt: skip


# --- the two benchmarks -------------------------------------------------------------------


SIDES: dict[str, Callable[[Database, int, Any, Path], Timing]] = {
    "bare": lambda db, n, spec, folder: run_bare_timed(db, n, spec, folder, train=False),
    "trained": lambda db, n, spec, folder: run_bare_timed(db, n, spec, folder, train=True),
    "cellsearch": run_cellsearch_timed,
}


def overhead(
    dbs: list[Database], processes: int, n_trials: int, reps: int, folder: Path
) -> list[str]:
    """Table rows per database: seconds per trial of each side, and the ratios (wall and
    CPU)."""
    rows = []
    for db in dbs:
        times: dict[str, list[float]] = {side: [] for side in SIDES}
        cpu: dict[str, list[float]] = {side: [] for side in SIDES}
        for rep in range(reps):
            order = list(SIDES)[rep % 3 :] + list(SIDES)[: rep % 3]  # rotate the order
            for side in order:
                name = f"ovh-{side[:4]}-{rep}-{uuid.uuid4().hex[:6]}"
                timing = SIDES[side](db, processes, minimal_spec(name, n_trials), folder)
                times[side].append(timing.seconds / n_trials)
                cpu[side].append(timing.cpu / n_trials)
                print(f"  {db.label} {side} rep {rep}: {times[side][-1] * 1e3:.1f} ms/trial, "
                      f"CPU {cpu[side][-1] * 1e3:.1f} ms/trial", flush=True)  # fmt: skip
        bare, trained, cs = (statistics.median(times[side]) for side in SIDES)
        paired = [c / t for c, t in zip(times["cellsearch"], times["trained"], strict=True)]
        cpu_cs, cpu_trained = (statistics.median(cpu[s]) for s in ("cellsearch", "trained"))
        rows.append(
            f"| {db.label} | {processes} | {n_trials} | {bare * 1e3:.1f} | {trained * 1e3:.1f} "
            f"| {cs * 1e3:.1f} | {cs / trained:.2f}x | {statistics.median(paired):.2f}x "
            f"({min(paired):.2f}-{max(paired):.2f}) | {cs / bare:.2f}x "
            f"| {cpu_trained * 1e3:.1f} | {cpu_cs * 1e3:.1f} | {cpu_cs / cpu_trained:.2f}x |"
        )
    return rows


def scaling(db: Database, n_trials: int, epochs: int, reps: int, folder: Path) -> list[str]:
    """Table rows: trials per second with 1 and 2 workers on ``db``, and the ratio."""
    rates: dict[int, list[float]] = {1: [], 2: []}
    train: dict[int, list[float]] = {1: [], 2: []}
    for rep in range(reps):
        for processes in (1, 2) if rep % 2 == 0 else (2, 1):
            name = f"scale-{processes}-{rep}-{uuid.uuid4().hex[:6]}"
            spec = make_spec(name, n_trials, CPU_TASK, epochs=epochs, hidden=8)
            rate = n_trials / run_cellsearch(db, processes, spec, folder)
            rates[processes].append(rate)
            train[processes].append(median_training_seconds(db.url, name))
            print(f"  {db.label} {processes} worker(s) rep {rep}: {rate:.2f} trials/s, "
                  f"{train[processes][-1]:.2f} s training per trial", flush=True)  # fmt: skip
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    t1, t2 = statistics.median(train[1]), statistics.median(train[2])
    return [f"| {db.label} | {n_trials} | {one:.2f} | {two:.2f} | {two / one:.2f}x "
            f"| {t1:.2f} | {t2:.2f} |"]  # fmt: skip


def waits(args: argparse.Namespace, pg: Database | None, sqlite: Database,
          folder: Path) -> list[str]:  # fmt: skip
    """The ``idle``, ``wakeup`` and ``memory`` benchmarks (:mod:`worker_waits`), with the
    workers of ``--baseline-src`` too when given; their tables' lines."""
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline_src:
        trees.append((f"baseline ({args.baseline_src.name})", args.baseline_src))
    lines: list[str] = []
    if args.only == "idle" and pg is not None:
        lines += [f"\nIdle workers ({args.idle_workers} on PostgreSQL, a {args.idle_window:g} s "
                  f"window after {args.idle_warmup:g} s)\n",
                  "| workers | transactions per idle worker per minute | connections per "
                  "idle worker |", "|---|---|---|"]  # fmt: skip
        for label, src in trees:
            with worker_waits.tree_database(pg, src, folder) as db:
                figures = worker_waits.idle(db, args.idle_workers, folder,
                                            warmup=args.idle_warmup, window=args.idle_window,
                                            src=src)  # fmt: skip
            lines.append(worker_waits.idle_rows(label, figures))
    if args.only == "wakeup" and pg is not None:
        lines += [
            "\nSubmission to first claim (idle workers on PostgreSQL)\n",
            "| workers | submissions | median ms | max ms |",
            "|---|---|---|---|",
        ]
        for label, src in trees:
            with worker_waits.tree_database(pg, src, folder) as db:
                delays = worker_waits.wakeup(db, 2, folder, submissions=args.submissions,
                                             backoff=args.idle_warmup, src=src)  # fmt: skip
            lines.append(worker_waits.wakeup_row(label, delays))
    if args.only == "memory":
        lines += [f"\nOne worker's memory, quick-start trials ({args.memory_trials} trials, "
                  "SQLite), MiB\n", "| workers | when | RSS | private | PSS |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for label, src in trees:
            with worker_waits.tree_database(sqlite, src, folder) as db:
                figures = worker_waits.memory(db, folder, n_trials=args.memory_trials, src=src)
            lines += worker_waits.memory_rows(label, figures)
        floor = {"after an epoch of the quick start's largest model": worker_waits.torch_floor()}
        lines += worker_waits.memory_rows("plain torch, no cellsearch (the floor)", floor)
    return lines


def run_selected(
    args: argparse.Namespace, dbs: list[Database], pg: Database | None, folder: Path
) -> tuple[list[str], list[str], list[str]]:
    """Run the benchmarks ``--only`` selects; return their table rows."""
    over, scale = [], []
    if args.only in (None, "overhead"):
        over = overhead(dbs, args.processes, args.overhead_trials, args.reps, folder)
    if args.only in (None, "scaling") and pg is not None:
        scale = scaling(pg, args.scaling_trials, args.scaling_epochs, args.reps, folder)
        ceiling = machine_ceiling(args.scaling_epochs, 4, args.reps)
        scale.append(f"\nMachine ceiling (plain training, 2 processes vs 1): {ceiling:.2f}x")
    return over, scale, waits(args, pg, dbs[0], folder)


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("bare-child", help="internal: one bare study.optimize process")
    child.add_argument("--url", required=True)
    child.add_argument("--spec", required=True)
    child.add_argument("--trials", type=int, required=True)
    child.add_argument("--go", type=Path, required=True)
    child.add_argument("--seed", type=int, default=0)
    child.add_argument("--train", action="store_true")
    spin = sub.add_parser("ceiling-child", help="internal: plain training for the ceiling")
    spin.add_argument("--epochs", type=int, required=True)
    spin.add_argument("--trials", type=int, required=True)
    parser.add_argument("--postgres-url", default=os.environ.get("CELLSEARCH_TEST_POSTGRES_URL"),
                        help="server for a throwaway database (default: "
                             "$CELLSEARCH_TEST_POSTGRES_URL); PostgreSQL runs are left out "
                             "without one")  # fmt: skip
    parser.add_argument("--processes", type=int, default=2, help="processes per overhead run")
    parser.add_argument("--overhead-trials", type=int, default=100)
    parser.add_argument("--scaling-trials", type=int, default=16)
    parser.add_argument("--scaling-epochs", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--only",
        choices=["overhead", "scaling", "idle", "wakeup", "memory"],
        help="run one benchmark (idle, wakeup, memory: only when named)",
    )
    parser.add_argument(
        "--bare-pragmas",
        action="store_true",
        help="the plain-Optuna side opens SQLite in the workers' synchronous mode, not "
        "Optuna's default",
    )
    parser.add_argument(
        "--bare-adapter",
        action="store_true",
        help="the plain-Optuna side runs on the workers' storage class (AdapterStorage) and "
        "SQLite modes: the orchestration's overhead alone",
    )
    parser.add_argument("--idle-workers", type=int, default=4)
    parser.add_argument("--idle-warmup", type=float, default=150.0,
                        help="seconds idle workers back off before the idle window (and "
                             "before each wakeup submission)")  # fmt: skip
    parser.add_argument("--idle-window", type=float, default=60.0)
    parser.add_argument("--submissions", type=int, default=5)
    parser.add_argument("--memory-trials", type=int, default=6)
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="a source tree whose workers idle, wakeup and memory run too",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run the benchmarks (or one bare child process)."""
    args = parse(argv)
    if args.command == "bare-child":
        bare_child(args.url, args.spec, args.trials, args.go, args.seed, args.train)
        return
    if args.command == "ceiling-child":
        ceiling_child(args.epochs, args.trials)
        return

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.bare_pragmas:
        os.environ[SAME_PRAGMAS] = "1"  # the bare processes inherit it
    if args.bare_adapter:
        os.environ[SAME_STORAGE] = "1"
    with tempfile.TemporaryDirectory(prefix="cellsearch-bench-") as tmp:
        folder = Path(tmp)
        with sqlite_database(folder) as sqlite:
            dbs = [sqlite]
            if args.postgres_url:
                with postgres_database(args.postgres_url) as pg:
                    dbs.append(pg)
                    over, scale, waited = run_selected(args, dbs, pg, folder)
            else:
                print("no --postgres-url: PostgreSQL runs (and the scaling benchmark) left out")
                over, scale, waited = run_selected(args, dbs, None, folder)
    if over:
        print("\nOrchestration overhead (minimal trials; medians of "
              f"{args.reps} interleaved runs)\n")  # fmt: skip
        print("| storage | processes | trials | bare optimize, constant objective ms/trial "
              "| bare optimize, same training ms/trial | cellsearch ms/trial "
              "| overhead (vs same training) | same, median of per-repetition ratios (range) "
              "| vs constant objective | CPU ms/trial, same training | CPU ms/trial, "
              "cellsearch | CPU overhead |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(over))
    if scale:
        print(f"\nScaling (CPU-bound trials, 1 torch thread per worker; medians of {args.reps})\n")
        print("| storage | trials | 1 worker trials/s | 2 workers trials/s | speed-up "
              "| training s/trial, 1 worker | training s/trial, 2 workers |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        print("\n".join(scale))
    print("\n".join(waited))
    print(json.dumps({"cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
