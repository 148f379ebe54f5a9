"""Parts (c) and (e) of benchmarks/gpu_check.py: real ``cellsearch worker`` processes.

Both use a temporary SQLite database, migrated and given its studies in this process
through the service's own functions (``upgrade``, ``create_study``); the workers are
separate processes started as an operator would start them.

(c) ``cellsearch worker --gpus 0 --per-gpu K`` for each K: the workers start and register
first (start-up is not timed), then a study of small models is created and timed until
its record reads ``completed``. GPU memory per trial comes two ways: the peak of
``torch.cuda.max_memory_allocated`` the trainer records on each trial
(``peak_memory_bytes``), and each worker process's memory as ``nvidia-smi
--query-compute-apps`` reports it (CUDA context and allocator cache included), sampled
twice a second. On CPU K ``cellsearch worker --device cpu`` processes stand in (plumbing
only, no memory columns).

(e) One worker and two studies: the oldest holds one trial far too large for the GPU, the
other two small trials. The first must end as an ``error`` outcome naming the
out-of-memory error, the worker must give the cached memory back (its log line) and run
the two small trials. On CPU a real out-of-memory error would take the host's memory, so
the worker is started through :func:`simulated_oom_worker`, whose first trial raises
``torch.OutOfMemoryError`` instead (plumbing only).

This module is also the launcher of that simulated worker::

    python benchmarks/gpu_workers.py simulated-oom-worker --database-url URL --max-trials 3
"""

from __future__ import annotations

import itertools
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from sqlalchemy import func, select

from cellsearch.search.study.limits import parse_spec
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage, session_scope
from cellsearch.service.store.tables import WorkerRecord
from cellsearch.service.studies.operations import create_study, get_study
from gpu_table import Section, nvidia_smi, progress
from workers import Processes, make_spec, sqlite_database, wait_for

WORKER_ENV = {"CELLSEARCH_POLL_INTERVAL": "0.05"}
SPEED_UP_TARGET = 4.0  # K=8 trials per minute over K=1's
RELEASED = re.compile(r"released cached GPU memory after a failed trial: (\d+) MiB -> (\d+) MiB")


@dataclass(frozen=True)
class Workload:
    """A study of small models: task, epochs, hidden size, trials per worker."""

    task: dict[str, Any]
    epochs: int
    hidden: int
    per_worker: int


FULL = Workload({"kind": "adding", "seq_len": 50, "n_train": 4096, "n_val": 256, "n_test": 256},
                epochs=3, hidden=32, per_worker=8)  # fmt: skip
QUICK = Workload({"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 16, "n_test": 16},
                 epochs=1, hidden=8, per_worker=2)  # fmt: skip
# (e): a peephole LSTM's autograd loop keeps every step's activations for the backward
# pass: about 0.25 GB per step at B=4096, H=1024, far past any GPU over 1000 steps
TOO_LARGE = {
    "task": {"kind": "adding", "seq_len": 1000, "n_train": 4096, "n_val": 64, "n_test": 64},
    "space": {"cell_type": ["lstm_peephole"], "hidden_size": 1024, "batch_size": 4096},
}


class MemorySampler:
    """Polls nvidia-smi's per-process GPU memory in a thread; keeps each process's peak.

    Processes already on the GPU when sampling starts (this check itself) are ignored.
    """

    def __init__(self, enabled: bool, interval: float = 0.5) -> None:
        self.enabled = enabled and nvidia_smi("--query-gpu=name") is not None
        self.interval = interval
        self.peaks: dict[str, float] = {}
        self._ignore = {pid for pid, _ in self._read()} if self.enabled else set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _read(self) -> list[tuple[str, float]]:
        rows = nvidia_smi("--query-compute-apps=pid,used_memory") or []
        return [(row[0], float(row[1])) for row in rows if len(row) == 2 and _number(row[1])]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid, mib in self._read():
                if pid not in self._ignore:
                    self.peaks[pid] = max(mib, self.peaks.get(pid, 0.0))

    def __enter__(self) -> MemorySampler:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> str:
        """Median and maximum of the processes' peaks in MiB, or why there is none."""
        if not self.enabled:
            return "n/a (no nvidia-smi)"
        if not self.peaks:
            return "n/a (nvidia-smi listed no process)"
        values = list(self.peaks.values())
        return f"{statistics.median(values):.0f} (max {max(values):.0f}, {len(values)} proc)"


def _number(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def _registered(settings: Settings) -> int:
    with session_scope(engine_for(settings)) as session:
        return int(session.scalar(select(func.count()).select_from(WorkerRecord)) or 0)


def _trials(settings: Settings, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=optuna_storage(settings))
    return sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)


def _median_attr(trials: list[optuna.trial.FrozenTrial], key: str) -> float | None:
    values = [t.user_attrs[key] for t in trials if t.user_attrs.get(key) is not None]
    return statistics.median(values) if values else None


def _worker_args(device: torch.device, url: str, k: int) -> list[list[str]]:
    """The command line(s) of K workers: one supervisor on CUDA, K processes on CPU."""
    base = ["-m", "cellsearch", "worker", "--database-url", url]
    if device.type == "cuda":
        return [[*base, "--gpus", "0", "--per-gpu", str(k)]]
    return [[*base, "--device", "cpu"] for _ in range(k)]


def scaling_run(device: torch.device, k: int, work: Workload, folder: Path) -> list[str]:
    """Time one study run by K workers; one table row."""
    folder.mkdir(parents=True)
    n_trials = work.per_worker * k
    with sqlite_database(folder) as db:
        settings = Settings(database_url=db.url)
        procs = Processes(folder)
        env = {**WORKER_ENV, **({"CELLSEARCH_TORCH_THREADS": "1"} if device.type == "cpu" else {})}
        try:
            for args in _worker_args(device, db.url, k):
                procs.start(args, env)
            spec = make_spec(f"scale-{k}", n_trials, work.task, work.epochs, work.hidden)
            engine = engine_for(settings)

            def registered() -> bool:
                procs.check()
                return _registered(settings) >= k

            def completed() -> bool:
                procs.check()
                return get_study(engine=engine, name=spec.name).status == "completed"

            wait_for(f"{k} workers to register", registered, timeout=120)

            with MemorySampler(device.type == "cuda") as sampler:
                start = time.perf_counter()
                create_study(engine=engine, storage=optuna_storage(settings), spec=spec)
                wait_for(f"study {spec.name}", completed, timeout=240)
                seconds = time.perf_counter() - start
        finally:
            procs.stop()
        trials = _trials(settings, spec.name)
    not_complete = sum(t.state != optuna.trial.TrialState.COMPLETE for t in trials)
    peak = _median_attr(trials, "peak_memory_bytes")
    return [str(k), str(len(trials)), f"{seconds:.1f}", f"{60 * n_trials / seconds:.1f}", "",
            f"{_median_attr(trials, 'seconds') or 0:.2f}",
            "n/a" if peak is None else f"{peak / 2**20:.0f}",
            sampler.summary() if device.type == "cuda" else "n/a", str(not_complete)]  # fmt: skip


def part_c(device: torch.device, quick: bool, folder: Path) -> Section:
    """Trials per minute with K workers on one GPU, K = 1, 4, 8 (1, 2 with --quick)."""
    work = QUICK if quick else FULL
    ks = (1, 2) if quick else (1, 4, 8)
    section = Section("c", "study through `cellsearch worker --gpus 0 --per-gpu K`")
    if device.type == "cpu":
        section.title = "study through K `cellsearch worker --device cpu` (CPU stand-in)"
    section.columns = ["K", "trials", "wall s", "trials/min", "x K=1", "median trial s",
                       "peak allocated MiB/trial (recorded)", "process MiB (nvidia-smi)",
                       "not complete"]  # fmt: skip
    for k in ks:
        progress(f"  (c) K={k}: starting workers")
        section.rows.append(scaling_run(device, k, work, folder / f"k{k}"))
        progress(f"  (c) K={k}: {section.rows[-1][3]} trials/min")
    base = float(section.rows[0][3])
    for row in section.rows:
        row[4] = f"{float(row[3]) / base:.2f}"
    judged = device.type == "cuda" and not quick
    if judged:
        eight = float(section.rows[-1][4])
        section.verdict = "pass" if eight >= SPEED_UP_TARGET else "fail"
    section.notes += [
        f"task {work.task}, cells lstm/gru, hidden {work.hidden}, batch 32, {work.epochs} "
        f"epochs, no pruner; {work.per_worker} trials per worker; SQLite (WAL) in a "
        "temporary folder; workers registered before the study was created.",
        "peak allocated: median over trials of the trainer's recorded "
        "torch.cuda.max_memory_allocated (attribute peak_memory_bytes); process MiB: median "
        "(and max) over worker processes of their peak in nvidia-smi --query-compute-apps "
        "(context and cache included).",
        f"target (CUDA, full size): K=8 trials/min >= {SPEED_UP_TARGET:g} x K=1.",
    ]
    if not judged:
        section.notes.append("not judged here: CPU stand-in or --quick sizes.")
    return section


def _oom_specs(device: torch.device) -> tuple[Any, Any]:
    """The study that cannot fit (first, so claimed first) and the one to run after it."""
    small = QUICK.task
    big = TOO_LARGE if device.type == "cuda" else {"task": small, "space": {"cell_type": ["lstm"]}}
    oom = parse_spec({"name": "oom", **big, "budget": {"n_trials": 1, "max_epochs": 1},
                      "pruner": "none", "sampler": "random"})  # fmt: skip
    return oom, make_spec("after-oom", 2, small, epochs=1, hidden=8)


def _oom_command(device: torch.device, url: str) -> list[str]:
    if device.type == "cuda":
        return ["-m", "cellsearch", "worker", "--database-url", url, "--device", "cuda:0",
                "--max-trials", "3"]  # fmt: skip
    return [str(Path(__file__).resolve()), "simulated-oom-worker", "--database-url", url,
            "--max-trials", "3"]  # fmt: skip


@dataclass(frozen=True)
class OomRun:
    """What the worker of part (e) left: its studies' trials, exit code, log, memory."""

    trials: dict[str, list[optuna.trial.FrozenTrial]]
    exit_code: int | None
    log: str
    memory: str


def run_oom_worker(device: torch.device, folder: Path) -> OomRun:
    """Create both studies, run one worker over them until it exits after 3 trials."""
    folder.mkdir(parents=True)
    with sqlite_database(folder) as db:
        settings = Settings(database_url=db.url)
        for spec in _oom_specs(device):
            create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
        procs = Processes(folder)
        with MemorySampler(device.type == "cuda") as sampler:
            try:
                procs.start(_oom_command(device, db.url), WORKER_ENV)
                progress("  (e) worker started: one trial too large, then two small ones")
                wait_for("the worker's 3 trials", lambda: procs.procs[0].poll() is not None, 240)
            finally:
                procs.stop()
        trials = {name: _trials(settings, name) for name in ("oom", "after-oom")}
    log = "\n".join(p.read_text(errors="replace") for p in sorted(folder.glob("proc-*.log")))
    return OomRun(trials, procs.procs[0].returncode, log, sampler.summary())


def oom_checks(run: OomRun, device: torch.device) -> dict[str, bool]:
    """Each condition of part (e) and whether it held."""
    failed = run.trials["oom"][0] if run.trials["oom"] else None
    attrs = failed.user_attrs if failed is not None else {}
    states = [t.state for t in run.trials["after-oom"]]
    checks = {
        "the large trial failed as an error": attrs.get("failure_kind") == "error",
        "its reason names the out-of-memory error": "out of memory"
        in str(attrs.get("failure_reason", "")).lower(),
        "both small trials completed": states == [optuna.trial.TrialState.COMPLETE] * 2,
        "the worker exited normally after 3 trials": run.exit_code == 0,
    }
    if device.type == "cuda":
        released = RELEASED.findall(run.log)
        freed = bool(released) and int(released[0][1]) < 1024
        checks["the worker gave the cache back (< 1 GiB reserved after)"] = freed
    return checks


def part_e(device: torch.device, quick: bool, folder: Path) -> Section:
    """A trial out of GPU memory is an ``error``; the worker frees the memory and goes on."""
    section = Section("e", "out-of-memory trial -> error outcome, worker goes on")
    section.columns = ["study", "trial", "state", "failure kind", "reason or result"]
    run = run_oom_worker(device, folder)
    for name, trials in run.trials.items():
        for t in trials:
            loss = t.user_attrs.get("best_val_loss")
            result = t.user_attrs.get("failure_reason") or f"best val loss {loss:.4g}"
            kind = t.user_attrs.get("failure_kind") or "-"
            section.rows.append([name, str(t.number), t.state.name.lower(), kind, result[:240]])
    checks = oom_checks(run, device)
    section.notes += [f"{'yes' if ok else 'NO'}: {what}" for what, ok in checks.items()]
    for before, after in RELEASED.findall(run.log):
        section.notes.append(f"worker log: {before} MiB reserved -> {after} MiB after the failure")
    if device.type == "cuda":
        section.notes.append(f"worker process GPU memory peak, MiB (nvidia-smi): {run.memory}")
        section.notes.append(f"the large trial: {TOO_LARGE}")
        section.verdict = "pass" if all(checks.values()) else "fail"
    else:
        section.notes.append("CPU: the out-of-memory error is simulated (simulated_oom_worker); "
                             "plumbing only, not judged.")  # fmt: skip
    return section


def simulated_oom_worker(argv: list[str]) -> None:
    """``cellsearch worker --device cpu ARGV`` whose first trial raises an out-of-memory error."""
    from cellsearch.search.trial import objective
    from cellsearch.service.cli import app

    real_train = objective.train
    calls = itertools.count()

    def train(*args: Any, **kwargs: Any) -> Any:
        if next(calls) == 0:
            raise torch.OutOfMemoryError(
                "CUDA out of memory (simulated by benchmarks/gpu_workers.py on CPU)"
            )
        return real_train(*args, **kwargs)

    objective.train = train
    app(["worker", "--device", "cpu", *argv])


if __name__ == "__main__":
    if sys.argv[1:2] != ["simulated-oom-worker"]:
        sys.exit("usage: gpu_workers.py simulated-oom-worker --database-url URL [--max-trials N]")
    simulated_oom_worker(sys.argv[2:])
