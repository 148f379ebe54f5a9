"""The plain-Optuna side of the overhead benchmark, and the machine's ceiling.

``study.optimize`` processes that share a study's budget, with an objective that trains the
same model with the same trainer (or returns a constant), started by :func:`run_bare` as
``workers.py bare-child`` and timed from a common start signal to the last one's end.
They open SQLite with Optuna's defaults (what a plain Optuna script gets), or, with
``workers.py --bare-pragmas``, with the workers' own modes; with ``--bare-adapter`` they
also run on the workers' storage class (cellsearch's ``AdapterStorage``, no heartbeat),
so that the ratio is the orchestration's alone, the storage's speed-up left out.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from worker_bench import (
    CPU_TASK,
    TIMEOUT_S,
    Database,
    Processes,
    Timing,
    _settings,
    counted_trials,
    make_spec,
    wait_for,
)

SCRIPT = Path(__file__).resolve().with_name("workers.py")
# Set (by ``workers.py --bare-pragmas``): the bare processes open SQLite as the workers do
# (their synchronous mode), instead of with Optuna's defaults.
SAME_PRAGMAS = "CELLSEARCH_BENCH_BARE_PRAGMAS"
# Set (by ``workers.py --bare-adapter``): the bare processes use the workers' storage class.
SAME_STORAGE = "CELLSEARCH_BENCH_BARE_ADAPTER"


def run_bare(db: Database, processes: int, spec: Any, folder: Path, *, train: bool) -> float:
    """Seconds ``processes`` bare ``study.optimize`` loops take to share ``spec``'s budget."""
    return run_bare_timed(db, processes, spec, folder, train=train).seconds


def run_bare_timed(db: Database, processes: int, spec: Any, folder: Path, *, train: bool) -> Timing:
    """Time ``processes`` bare ``study.optimize`` loops sharing ``spec``'s budget: wall
    seconds, and the CPU seconds the processes spent in ``optimize``."""
    import optuna

    from cellsearch.service.store.db import optuna_storage

    optuna.create_study(study_name=spec.name, storage=optuna_storage(_settings(db.url)))
    go = folder / f"go-{spec.name}"
    shares = [len(range(i, spec.budget.n_trials, processes)) for i in range(processes)]
    procs = Processes(folder)
    try:
        for i, share in enumerate(shares):
            procs.start([str(SCRIPT), "bare-child", "--url", db.url, "--spec",
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
        ends = [json.loads(d.read_text()) for d in done]
    finally:
        procs.stop()
    counted = counted_trials(db.url, spec.name)
    if counted != spec.budget.n_trials:
        raise RuntimeError(f"bare {spec.name}: {counted} trials, not {spec.budget.n_trials}")
    return Timing(max(e["end"] for e in ends) - start, sum(e["cpu"] for e in ends))


def bare_child(url: str, spec_json: str, trials: int, go: Path, seed: int, train: bool) -> None:
    """One bare process: wait for ``go``, run ``study.optimize``, write its end time.

    Without ``train`` the objective samples the spec's parameters and returns 0.0. With
    ``train`` it is what a user would write with plain Optuna for the same trial: sample,
    build the same model, train it with the same trainer, report every epoch's validation
    loss and ask the pruner, return the best validation loss.
    """
    import optuna
    import torch
    from sqlalchemy import event

    from cellsearch.models import SequenceModel
    from cellsearch.search.optuna_adapter import AdapterStorage
    from cellsearch.search.study.spec import StudySpec
    from cellsearch.search.tasks import build_task
    from cellsearch.search.trial.optimizers import warm_up
    from cellsearch.search.trial.space import suggest_config
    from cellsearch.search.trial.trainer import EpochResult
    from cellsearch.search.trial.trainer import train as train_model
    from cellsearch.search.trial_config import TrainConfig
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import engine_kwargs, sqlite_pragmas

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    spec = StudySpec.model_validate_json(spec_json)
    data = build_task(spec.task, spec.seed)
    same_storage = bool(os.environ.get(SAME_STORAGE))
    kind = AdapterStorage if same_storage else optuna.storages.RDBStorage
    storage = kind(url, engine_kwargs=engine_kwargs(url, _settings(url)))
    same_modes = os.environ.get(SAME_PRAGMAS) or same_storage  # the workers' SQLite modes
    if same_modes and url.startswith("sqlite"):
        storage.engine.dispose()
        event.listen(storage.engine, "connect", sqlite_pragmas(Settings().sqlite_synchronous))
    # the spec's pruner, as a user would set it ("none": Optuna's default would be median)
    pruner = optuna.pruners.NopPruner() if spec.pruner == "none" else None
    study = optuna.load_study(study_name=spec.name, storage=storage, pruner=pruner,
                              sampler=optuna.samplers.RandomSampler(seed=seed))  # fmt: skip

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
    before = os.times()
    study.optimize(objective, n_trials=trials)
    after = os.times()
    cpu = after.user + after.system - before.user - before.system
    Path(f"{go}.done{os.getpid()}").write_text(json.dumps({"end": time.time(), "cpu": cpu}))


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
            procs = [subprocess.Popen([sys.executable, str(SCRIPT),
                                       "ceiling-child", "--epochs", str(epochs), "--trials",
                                       str(trials)], stdout=subprocess.PIPE, text=True)
                     for _ in range(n)]  # fmt: skip
            outs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
            times[n] = max(float(o.strip().splitlines()[-1]) for o in outs)
        ratios.append(2 * times[1] / times[2])
        print(f"  machine ceiling: 1 process {times[1]:.2f} s, 2 processes {times[2]:.2f} s "
              f"-> {ratios[-1]:.2f}x", flush=True)  # fmt: skip
    return statistics.median(ratios)
