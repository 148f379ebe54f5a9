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

Run from the repository root::

    .venv/bin/python benchmarks/workers.py --postgres-url postgresql+psycopg://USER@HOST/DB
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
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
    from cellsearch.service.store.db import engine_for, optuna_storage
    from cellsearch.service.studies.operations import create_study, get_study

    settings = _settings(db.url)
    engine = engine_for(settings)

    def completed() -> bool:
        procs.check()
        return get_study(engine=engine, name=spec.name).status == "completed"

    start = time.perf_counter()
    create_study(engine=engine, storage=optuna_storage(settings), spec=spec)
    wait_for(f"study {spec.name}", completed, timeout)
    seconds = time.perf_counter() - start
    counted = counted_trials(db.url, spec.name)
    if counted != spec.budget.n_trials:
        raise RuntimeError(f"{spec.name}: {counted} counted trials, not {spec.budget.n_trials}")
    return seconds


def run_cellsearch(db: Database, processes: int, spec: Any, folder: Path) -> float:
    """Start workers, time one study, stop them."""
    with workers(db, processes, folder) as procs:
        return time_cellsearch(db, spec, procs)


def run_bare(db: Database, processes: int, spec: Any, folder: Path, *, train: bool) -> float:
    """Time ``processes`` bare ``study.optimize`` loops sharing ``spec``'s budget."""
    import optuna

    from cellsearch.service.store.db import optuna_storage

    optuna.create_study(study_name=spec.name, storage=optuna_storage(_settings(db.url)))
    go = folder / f"go-{spec.name}"
    shares = [len(range(i, spec.budget.n_trials, processes)) for i in range(processes)]
    procs = Processes(folder)
    try:
        for i, share in enumerate(shares):
            procs.start([str(Path(__file__).resolve()), "bare-child", "--url", db.url, "--spec",
                         spec.model_dump_json(), "--trials", str(share), "--go", str(go),
                         "--seed", str(i), *(["--train"] if train else [])])  # fmt: skip
        ready = [Path(f"{go}.ready{p.pid}") for p in procs.procs]
        done = [Path(f"{go}.done{p.pid}") for p in procs.procs]

        def all_ready() -> bool:
            procs.check()
            return all(r.exists() for r in ready)

        wait_for("bare processes to start", all_ready)
        start = time.time()
        go.touch()
        for proc in procs.procs:
            proc.wait(timeout=TIMEOUT_S)
        procs.check()
        end = max(float(d.read_text()) for d in done)
    finally:
        procs.stop()
    counted = counted_trials(db.url, spec.name)
    if counted != spec.budget.n_trials:
        raise RuntimeError(f"bare {spec.name}: {counted} trials, not {spec.budget.n_trials}")
    return end - start


def bare_child(url: str, spec_json: str, trials: int, go: Path, seed: int, train: bool) -> None:
    """One bare process: wait for ``go``, run ``study.optimize``, write its end time.

    Without ``train`` the objective samples the spec's parameters and returns 0.0. With
    ``train`` it is what a user would write with plain Optuna for the same trial: sample,
    build the same model, train it with the same trainer, report every epoch's validation
    loss and ask the pruner, return the best validation loss.
    """
    import optuna
    import torch

    from cellsearch.models import SequenceModel
    from cellsearch.search.study.spec import StudySpec
    from cellsearch.search.tasks import build_task
    from cellsearch.search.trial.optimizers import warm_up
    from cellsearch.search.trial.space import suggest_config
    from cellsearch.search.trial.trainer import EpochResult
    from cellsearch.search.trial.trainer import train as train_model
    from cellsearch.search.trial_config import TrainConfig
    from cellsearch.service.store.db import engine_kwargs

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    spec = StudySpec.model_validate_json(spec_json)
    data = build_task(spec.task, spec.seed)
    storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url, _settings(url)))
    study = optuna.load_study(
        study_name=spec.name, storage=storage, sampler=optuna.samplers.RandomSampler(seed=seed)
    )

    def objective(trial: optuna.Trial) -> float:
        meta = data.meta
        config = suggest_config(
            trial, spec, input_size=meta.input_size, output_size=meta.output_size, seed=0
        )
        if not train:
            return 0.0
        model = SequenceModel(config.model.cell_type, meta.input_size, config.model.hidden_size,
                              num_layers=config.model.num_layers, output_size=meta.output_size,
                              head=meta.head)  # fmt: skip

        def on_epoch(epoch: EpochResult) -> bool:
            trial.report(epoch.val_loss, epoch.epoch)
            return not trial.should_prune()

        settings = TrainConfig(learning_rate=config.train.learning_rate,
                               batch_size=config.train.batch_size,
                               max_epochs=spec.budget.max_epochs)  # fmt: skip
        return train_model(model, data, settings, "cpu", on_epoch).best_val_loss

    warm_up(torch.device("cpu"))  # as a worker does at start-up
    Path(f"{go}.ready{os.getpid()}").touch()
    while not go.exists():
        time.sleep(0.005)
    study.optimize(objective, n_trials=trials)
    Path(f"{go}.done{os.getpid()}").write_text(repr(time.time()))


def ceiling_child(epochs: int, trials: int) -> None:
    """Train ``trials`` CPU-bound models back to back (1 thread); print the seconds taken."""
    import torch

    from cellsearch.models import SequenceModel
    from cellsearch.search.tasks import build_task
    from cellsearch.search.trial.trainer import train
    from cellsearch.search.trial_config import TrainConfig

    torch.set_num_threads(1)
    spec = make_spec("ceiling", 1, CPU_TASK, epochs=epochs, hidden=8)
    data = build_task(spec.task, spec.seed)
    config = TrainConfig(learning_rate=1e-3, batch_size=32, max_epochs=epochs)
    start = time.perf_counter()
    for _ in range(trials):
        model = SequenceModel("gru", data.meta.input_size, 8, output_size=data.meta.output_size,
                              head=data.meta.head)  # fmt: skip
        train(model, data, config, "cpu", lambda _epoch: True)
    print(time.perf_counter() - start)


def machine_ceiling(epochs: int, trials: int, reps: int) -> float:
    """The speed-up two processes get over one on this machine for plain training.

    Both configurations train the same number of models per process (no database, no
    cellsearch); the ratio is ``2 * t(1 process) / t(2 processes)``, the most any
    2-worker run could reach here.
    """
    ratios = []
    for _ in range(reps):
        times = {}
        for n in (1, 2):
            procs = [subprocess.Popen([sys.executable, str(Path(__file__).resolve()),
                                       "ceiling-child", "--epochs", str(epochs), "--trials",
                                       str(trials)], stdout=subprocess.PIPE, text=True)
                     for _ in range(n)]  # fmt: skip
            outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
            times[n] = max(float(o.strip().splitlines()[-1]) for o in outs)
        ratios.append(2 * times[1] / times[2])
        print(f"  machine ceiling: 1 process {times[1]:.2f} s, 2 processes {times[2]:.2f} s "
              f"-> {ratios[-1]:.2f}x", flush=True)  # fmt: skip
    return statistics.median(ratios)


# --- the two benchmarks -------------------------------------------------------------------


SIDES: dict[str, Callable[[Database, int, Any, Path], float]] = {
    "bare": lambda db, n, spec, folder: run_bare(db, n, spec, folder, train=False),
    "trained": lambda db, n, spec, folder: run_bare(db, n, spec, folder, train=True),
    "cellsearch": run_cellsearch,
}


def overhead(
    dbs: list[Database], processes: int, n_trials: int, reps: int, folder: Path
) -> list[str]:
    """Table rows per database: seconds per trial of each side, and the ratios."""
    rows = []
    for db in dbs:
        times: dict[str, list[float]] = {side: [] for side in SIDES}
        for rep in range(reps):
            order = list(SIDES)[rep % 3 :] + list(SIDES)[: rep % 3]  # rotate the order
            for side in order:
                name = f"ovh-{side[:4]}-{rep}-{uuid.uuid4().hex[:6]}"
                seconds = SIDES[side](db, processes, minimal_spec(name, n_trials), folder)
                times[side].append(seconds / n_trials)
                print(f"  {db.label} {side} rep {rep}: {times[side][-1] * 1e3:.1f} ms/trial",
                      flush=True)  # fmt: skip
        bare, trained, cs = (statistics.median(times[side]) for side in SIDES)
        paired = [c / t for c, t in zip(times["cellsearch"], times["trained"], strict=True)]
        rows.append(
            f"| {db.label} | {processes} | {n_trials} | {bare * 1e3:.1f} | {trained * 1e3:.1f} "
            f"| {cs * 1e3:.1f} | {cs / trained:.2f}x | {statistics.median(paired):.2f}x "
            f"({min(paired):.2f}-{max(paired):.2f}) | {cs / bare:.2f}x |"
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


def run_selected(
    args: argparse.Namespace, dbs: list[Database], pg: Database | None, folder: Path
) -> tuple[list[str], list[str]]:
    """Run the benchmarks ``--only`` selects; return their table rows."""
    over, scale = [], []
    if args.only in (None, "overhead"):
        over = overhead(dbs, args.processes, args.overhead_trials, args.reps, folder)
    if args.only in (None, "scaling") and pg is not None:
        scale = scaling(pg, args.scaling_trials, args.scaling_epochs, args.reps, folder)
        ceiling = machine_ceiling(args.scaling_epochs, 4, args.reps)
        scale.append(f"\nMachine ceiling (plain training, 2 processes vs 1): {ceiling:.2f}x")
    return over, scale


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run both benchmarks (or one bare child process)."""
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
    parser.add_argument("--only", choices=["overhead", "scaling"], help="run one benchmark")
    args = parser.parse_args(argv)
    if args.command == "bare-child":
        bare_child(args.url, args.spec, args.trials, args.go, args.seed, args.train)
        return
    if args.command == "ceiling-child":
        ceiling_child(args.epochs, args.trials)
        return

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="cellsearch-bench-") as tmp:
        folder = Path(tmp)
        with sqlite_database(folder) as sqlite:
            dbs = [sqlite]
            if args.postgres_url:
                with postgres_database(args.postgres_url) as pg:
                    dbs.append(pg)
                    over, scale = run_selected(args, dbs, pg, folder)
            else:
                print("no --postgres-url: PostgreSQL runs (and the scaling benchmark) left out")
                over, scale = run_selected(args, dbs, None, folder)
    if over:
        print("\nOrchestration overhead (minimal trials; medians of "
              f"{args.reps} interleaved runs)\n")  # fmt: skip
        print("| storage | processes | trials | bare optimize, constant objective ms/trial "
              "| bare optimize, same training ms/trial | cellsearch ms/trial "
              "| overhead (vs same training) | same, median of per-repetition ratios (range) "
              "| vs constant objective |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(over))
    if scale:
        print(f"\nScaling (CPU-bound trials, 1 torch thread per worker; medians of {args.reps})\n")
        print("| storage | trials | 1 worker trials/s | 2 workers trials/s | speed-up "
              "| training s/trial, 1 worker | training s/trial, 2 workers |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        print("\n".join(scale))
    print(json.dumps({"cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
