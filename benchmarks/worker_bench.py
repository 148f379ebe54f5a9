"""Shared pieces of the worker benchmarks: databases, studies, worker processes, timing.

:mod:`workers` (the benchmarks and their command line), :mod:`bare_optuna` (the plain
``study.optimize`` side), :mod:`worker_waits` and the other benchmarks use these.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

MIN_TASK = {"kind": "adding", "seq_len": 2, "n_train": 1, "n_val": 1, "n_test": 1}
CPU_TASK = {"kind": "adding", "seq_len": 40, "n_train": 768, "n_val": 64, "n_test": 64}
WORKER_ENV = {"CELLSEARCH_POLL_INTERVAL": "0.05", "CELLSEARCH_TORCH_THREADS": "1"}
POLL_S = 0.02
TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Database:
    """A database the benchmark may fill: its label in the table and its URL."""

    label: str
    url: str


@dataclass(frozen=True)
class Timing:
    """A timed run: its wall seconds, and the CPU seconds its processes spent in it (all
    their threads; the database server's own work is not counted)."""

    seconds: float
    cpu: float


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a running process has used (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Run:
    """What one timed run measured."""

    config: str
    seconds: float
    trials: int

    @property
    def per_trial(self) -> float:
        """Wall seconds per trial."""
        return self.seconds / self.trials


# --- databases ----------------------------------------------------------------------------


@contextmanager
def sqlite_database(folder: Path) -> Iterator[Database]:
    """A SQLite file in ``folder``, migrated."""
    db = Database("SQLite", f"sqlite:///{folder}/bench.db")
    _migrate(db.url)
    yield db


@contextmanager
def postgres_database(admin_url: str) -> Iterator[Database]:
    """A throwaway PostgreSQL database on ``admin_url``'s server, migrated, then dropped."""
    import psycopg
    from sqlalchemy.engine import make_url

    from cellsearch.service.store.db import dispose_all

    base = make_url(admin_url)
    name = f"cellsearch_bench_{uuid.uuid4().hex[:12]}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = Database("PostgreSQL", base.set(database=name).render_as_string(hide_password=False))
        _migrate(db.url)
        yield db
    finally:
        dispose_all()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _migrate(url: str) -> None:
    from cellsearch.service.store.migrate import upgrade

    upgrade(_settings(url))


def _settings(url: str) -> Any:
    from cellsearch.service.settings import Settings

    return Settings(database_url=url)


# --- studies ------------------------------------------------------------------------------


def make_spec(name: str, n_trials: int, task: dict[str, Any], epochs: int, hidden: int) -> Any:
    """A spec over LSTM and GRU with fixed hidden size and batch size, no pruner."""
    from cellsearch.search.study.limits import parse_spec

    return parse_spec(
        {
            "name": name,
            "task": task,
            "space": {"cell_type": ["lstm", "gru"], "hidden_size": hidden, "batch_size": 32},
            "budget": {"n_trials": n_trials, "max_epochs": epochs},
            "pruner": "none",
            "sampler": "random",
            "seed": 11,
        }
    )


def minimal_spec(name: str, n_trials: int) -> Any:
    """The smallest trial a spec allows."""
    return make_spec(name, n_trials, MIN_TASK, epochs=1, hidden=1)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Poll ``predicate`` every :data:`POLL_S` seconds; raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def median_training_seconds(url: str, name: str) -> float:
    """Median of the trials' own ``seconds`` (training time, as the trainer measured it)."""
    import optuna

    from cellsearch.service.store.db import optuna_storage

    study = optuna.load_study(study_name=name, storage=optuna_storage(_settings(url)))
    return statistics.median(t.user_attrs["seconds"] for t in study.get_trials(deepcopy=False))


def counted_trials(url: str, name: str) -> int:
    """How many search trials of the study used a unit of its budget (seed
    re-evaluation runs, which have a budget of their own, left out)."""
    import optuna

    from cellsearch.search.record import is_counted, search_trials
    from cellsearch.service.store.db import optuna_storage

    study = optuna.load_study(study_name=name, storage=optuna_storage(_settings(url)))
    return sum(is_counted(t) for t in search_trials(study.get_trials(deepcopy=False)))


# --- processes ----------------------------------------------------------------------------


class Processes:
    """Child processes of one run, each logging to a file; killed if left running."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``python args...`` with its output in a log file."""
        log = (self.folder / f"proc-{uuid.uuid4().hex[:8]}.log").open("wb")
        self._logs.append(log)
        self.procs.append(
            subprocess.Popen(
                [sys.executable, *args],
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def check(self) -> None:
        """Raise if a child exited with an error."""
        for proc in self.procs:
            if proc.poll() not in (None, 0):
                raise RuntimeError(f"child {proc.pid} exited with {proc.returncode}")

    def stop(self) -> None:
        """SIGTERM every child, wait (bounded), kill what is left, close the logs."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        for log in self._logs:
            log.close()


@contextmanager
def workers(
    db: Database, n: int, folder: Path, env: dict[str, str] | None = None
) -> Iterator[Processes]:
    """``n`` idle ``cellsearch worker`` processes on ``db``, each registered (``env`` adds
    to or overrides :data:`WORKER_ENV`)."""
    from sqlalchemy import select

    from cellsearch.service.store.db import engine_for, session_scope
    from cellsearch.service.store.tables import WorkerRecord

    procs = Processes(folder)
    try:
        for _ in range(n):
            procs.start(
                ["-m", "cellsearch", "worker", "--database-url", db.url, "--device", "cpu"],
                {**WORKER_ENV, **(env or {})},
            )
        pids = {p.pid for p in procs.procs}
        engine = engine_for(_settings(db.url))

        def registered() -> bool:
            procs.check()
            with session_scope(engine) as session:
                return pids <= set(session.scalars(select(WorkerRecord.pid)))

        wait_for("workers to register", registered)
        yield procs
    finally:
        procs.stop()


def time_cellsearch(db: Database, spec: Any, procs: Processes, timeout: float = TIMEOUT_S) -> float:
    """Seconds from creating ``spec``'s study to its record reading ``completed``."""
    return timed_cellsearch(db, spec, procs, timeout).seconds


def timed_cellsearch(
    db: Database, spec: Any, procs: Processes, timeout: float = TIMEOUT_S
) -> Timing:
    """Wall seconds from creating ``spec``'s study to its record reading ``completed``, and
    the CPU seconds the workers spent meanwhile."""
    from cellsearch.service.store.db import engine_for, optuna_storage
    from cellsearch.service.studies.operations import create_study, get_study

    settings = _settings(db.url)
    engine = engine_for(settings)

    def completed() -> bool:
        procs.check()
        return get_study(engine=engine, name=spec.name).status == "completed"

    pids = [p.pid for p in procs.procs]
    cpu = sum(cpu_seconds(pid) for pid in pids)
    start = time.perf_counter()
    create_study(engine=engine, storage=optuna_storage(settings), spec=spec)
    wait_for(f"study {spec.name}", completed, timeout)
    seconds = time.perf_counter() - start
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu
    counted = counted_trials(db.url, spec.name)
    if counted != spec.budget.n_trials:
        raise RuntimeError(f"{spec.name}: {counted} counted trials, not {spec.budget.n_trials}")
    return Timing(seconds, cpu)


def run_cellsearch(db: Database, processes: int, spec: Any, folder: Path) -> float:
    """Start workers, time one study, stop them."""
    return run_cellsearch_timed(db, processes, spec, folder).seconds


def run_cellsearch_timed(db: Database, processes: int, spec: Any, folder: Path) -> Timing:
    """Start workers, time one study (wall and the workers' CPU), stop them."""
    with workers(db, processes, folder) as procs:
        return timed_cellsearch(db, spec, procs)
