"""Checkpoints: what they cost a trial, what a kill loses, what a study keeps on disk.

Three measurements, each printed as one table row for the README's performance table:

1. **Overhead.** The trainer with checkpoints against the trainer without, in one process,
   interleaved, medians of ``--reps``: at the quick start's size (adding T=30, LSTM H=64,
   10 epochs) and at ``examples/adding-t100.yaml``'s (T=100, LSTM H=128, 10 epochs), with
   the default interval (30 s: a short trial never writes one) and with a checkpoint after
   every epoch (the worst case). A checkpoint is what a worker writes: the state dumped to
   safetensors, written to a directory store, the older one removed.
2. **Work lost per kill.** A ``cellsearch worker`` process trains a study of long trials
   (checkpoint every ``--interval`` seconds) and is SIGKILLed ``--kills`` times at random
   moments, a new one started each time; once the study is done, each killed trial's
   epochs past the checkpoint its copy resumed from are what the kill lost (target: at
   most one interval of training).
3. **Disk.** The quick start run to the end with the default retention (the best 3 models
   of each cell type), and the most adding-t100's defaults can keep (its largest model
   times the models kept: 3 per cell type and every seed re-evaluation run).

Run from the repository root: ``.venv/bin/python benchmarks/checkpoints.py`` (about
10 minutes on a 2-core machine; ``--only overhead|kills|disk``).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cellsearch.models import SequenceModel, model_param_count
from cellsearch.search.tasks import AddingTask, build_task
from cellsearch.search.trial.checkpoint import Checkpointer, TrainState, dump_state
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig

SIZES = {  # name -> (seq_len, n_train, n_val, hidden size, batch size)
    "quick start": (30, 1200, 400, 64, 32),
    "adding-t100": (100, 4000, 1000, 128, 32),
}


def overhead(reps: int) -> None:
    """Row 1: the trainer with checkpoints / without, per size and interval."""
    from optuna.artifacts import FileSystemArtifactStore

    folder = Path(tempfile.mkdtemp(prefix="cellsearch-ckpt-"))
    store = FileSystemArtifactStore(folder)
    torch.set_num_threads(1)
    for name, (seq_len, n_train, n_val, hidden, batch) in SIZES.items():
        spec = AddingTask(kind="adding", seq_len=seq_len, n_train=n_train, n_val=n_val,
                          n_test=n_val)  # fmt: skip
        data = build_task(spec, seed=0)
        config = TrainConfig(learning_rate=0.01, batch_size=batch, max_epochs=10, seed=0)
        times: dict[str, list[float]] = {"none": [], "30 s": [], "every epoch": []}
        written = {"30 s": 0, "every epoch": 0}
        for rep in range(reps):
            order = list(times) if rep % 2 == 0 else list(reversed(times))
            for mode in order:
                torch.manual_seed(0)
                model = SequenceModel("lstm", data.meta.input_size, hidden, output_size=1)
                checkpointer = None
                if mode != "none":
                    checkpointer = Checkpointer(30.0 if mode == "30 s" else 0.0, _writer(store))
                start = time.perf_counter()
                train(model, data, config, checkpointer=checkpointer,
                      keep_best_weights=mode != "none")  # fmt: skip
                times[mode].append(time.perf_counter() - start)
                if checkpointer is not None:
                    written[mode] = checkpointer.written
        base = statistics.median(times["none"])
        ratios = ", ".join(
            f"{mode} {statistics.median(times[mode]) / base:.3f}x ({written[mode]} written)"
            for mode in ("30 s", "every epoch")
        )
        print(f"| checkpoint overhead, {name} | {base:.2f} s a trial without; with: {ratios} |")


def _writer(store: Any) -> Callable[[TrainState], bool]:
    """What a worker's checkpointer does, without the database: dump, write, drop older."""
    previous: list[str] = []

    def write(state: TrainState) -> bool:
        blob = dump_state(state)
        artifact_id = f"ckpt-{time.monotonic_ns()}"
        store.write(artifact_id, io.BytesIO(blob))
        for old in previous:
            store.remove(old)
        previous[:] = [artifact_id]
        return True

    return write


def kills(n_kills: int, interval: float, seed: int, verbose: bool = False) -> None:
    """Row 2: epochs (and seconds) of training each SIGKILL lost."""
    import optuna

    from cellsearch.search.record import Attr
    from cellsearch.search.study.limits import parse_spec
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import engine_for, optuna_storage
    from cellsearch.service.store.migrate import upgrade
    from cellsearch.service.studies.operations import create_study, get_study

    folder = Path(tempfile.mkdtemp(prefix="cellsearch-kills-"))
    url = f"sqlite:///{folder / 'kills.db'}"
    env = {**os.environ, "CELLSEARCH_DATABASE_URL": url, "CELLSEARCH_HEARTBEAT_INTERVAL": "1",
           "CELLSEARCH_GRACE_PERIOD": "3", "CELLSEARCH_POLL_INTERVAL": "0.1",
           "CELLSEARCH_TORCH_THREADS": "1", "CELLSEARCH_CHECKPOINT_EVERY_S": str(interval),
           "CELLSEARCH_ARTIFACT_DIR": str(folder / "store")}  # fmt: skip
    settings = Settings(database_url=url, heartbeat_interval=1, grace_period=3)
    upgrade(settings)
    spec = parse_spec({
        "name": "kills", "task": {"kind": "adding", "seq_len": 30, "n_train": 2000,
                                  "n_val": 200, "n_test": 200},
        "space": {"cell_type": ["lstm", "gru"], "hidden_size": 64, "batch_size": 32},
        "budget": {"n_trials": n_kills + 2, "max_epochs": 30}, "pruner": "none",
    })  # fmt: skip
    create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
    rng = random.Random(seed)
    done = 0
    while True:
        with open(folder / "workers.log", "ab") as log:
            worker = subprocess.Popen([sys.executable, "-m", "cellsearch", "worker"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        if done < n_kills:
            time.sleep(rng.uniform(6.0, 14.0))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            done += 1
            continue
        while get_study(engine=engine_for(settings), name="kills").status != "completed":
            time.sleep(1.0)
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        break
    trials = optuna.load_study(study_name="kills", storage=optuna_storage(settings)).trials
    copy_of = {t.user_attrs.get(Attr.RETRY_OF): t for t in trials if Attr.RETRY_OF in t.user_attrs}

    def epoch_seconds(trial: Any) -> float:
        """Seconds an epoch of this configuration takes: its completed copy's own figure."""
        while trial.state.name != "COMPLETE":
            trial = copy_of[trial.number]
        return float(trial.user_attrs[Attr.SECONDS_PER_EPOCH])

    lost: list[tuple[int, float]] = []  # epochs, seconds
    orphans = 0
    for trial in trials:
        if trial.user_attrs.get(Attr.FAILURE_KIND) != "stale":
            continue
        copy = copy_of.get(trial.number)
        if copy is None:  # its requeuer was killed too: the deal ran again from epoch 0
            orphans += 1
            continue
        resumed = int(copy.user_attrs.get(Attr.RESUMED_FROM) or 0)
        epochs = len(trial.intermediate_values) - resumed
        lost.append((epochs, epochs * epoch_seconds(copy)))
        if verbose:
            print(
                f"  trial {trial.number}: {len(trial.intermediate_values)} epochs reported, "
                f"copy {copy.number} resumed from epoch {resumed} ({lost[-1][1]:.1f} s lost); "
                f"note: {copy.user_attrs.get(Attr.RESUME_NOTE)}"
            )
    if verbose:
        print(f"  worker log: {folder / 'workers.log'}")
    epochs_lost, seconds_lost = [e for e, _ in lost], [s for _, s in lost]
    print(
        f"| training lost per SIGKILL, interval {interval:g} s ({len(lost)} trials killed "
        f"mid-training in {n_kills} kills) | epochs: median {statistics.median(epochs_lost):g}, "
        f"max {max(epochs_lost)} (seconds, at each configuration's own epoch time: median "
        f"{statistics.median(seconds_lost):.1f}, max {max(seconds_lost):.1f}; target: at most "
        f"{interval:g} s, or one epoch if longer); {orphans} killed while requeuing another's "
        "trial (that deal restarted from epoch 0) |"
    )


def disk() -> None:
    """Row 3: bytes a study keeps with the defaults."""
    import yaml

    from cellsearch.search.study.limits import parse_spec
    from cellsearch.search.worker.loop import Worker
    from cellsearch.service.artifacts.index import SqlArtifactIndex
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import engine_for, optuna_storage
    from cellsearch.service.store.migrate import upgrade
    from cellsearch.service.studies.operations import create_study
    from cellsearch.service.workers.runner import sql_backend, trial_artifacts

    folder = Path(tempfile.mkdtemp(prefix="cellsearch-disk-"))
    settings = Settings(database_url=f"sqlite:///{folder / 'disk.db'}")
    upgrade(settings)
    spec = parse_spec(yaml.safe_load(Path("examples/quickstart.yaml").read_text()))
    engine, storage = engine_for(settings), optuna_storage(settings)
    create_study(engine=engine, storage=storage, spec=spec)
    worker = Worker(storage, sql_backend(engine, grace_period=settings.grace_period),
                    device=torch.device("cpu"), torch_threads=1,
                    keeper=trial_artifacts(settings, engine, storage))  # fmt: skip
    while worker.step() is not None:
        pass
    index = SqlArtifactIndex(engine)
    kept = index.models(spec.name)
    held = index.study_bytes(spec.name)
    print(
        f"| disk, the quick start with the defaults (measured) | {held} bytes: "
        f"{len(kept)} models of {spec.budget.n_trials} trials, no checkpoint left |"
    )
    lstm = model_param_count("lstm", 2, 128, 1, 1)
    t100 = 3 * (3 + 5) * (lstm * 4 + 2_000)  # 3 cells x (3 kept + 5 re-eval runs), fp32
    print(
        f"| disk, adding-t100 with the defaults (bound) | at most {t100 / 1e6:.1f} MB "
        f"(largest model {lstm} parameters; 3 kept a cell type and 5 re-evaluation runs) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["overhead", "kills", "disk"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print each killed trial's epochs and where its copy resumed",
    )
    args = parser.parse_args()
    if args.only in (None, "overhead"):
        overhead(args.reps)
    if args.only in (None, "kills"):
        kills(args.kills, args.interval, args.seed, args.verbose)
    if args.only in (None, "disk"):
        disk()


if __name__ == "__main__":
    main()
