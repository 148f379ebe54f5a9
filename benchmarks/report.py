"""Benchmark: time to build the comparison report vs time to load the trials.

Usage::

    python benchmarks/report.py                      # temp SQLite file
    python benchmarks/report.py --storage URL        # any Optuna RDB URL
    python benchmarks/report.py --in-memory          # synthetic trials, no storage

With ``--storage`` the study ``--study`` is created and filled with ``--trials``
synthetic finished trials (``study.add_trials``) if it does not exist yet. The
load is ``optuna.load_study(...).get_trials(deepcopy=False)``; the report is
:func:`cellsearch.search.report.build_report` on those trials. Each is timed
``--repeat`` times and the median is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.report import ReportContext, build_report

CELLS = ("lstm", "gru", "rnn_tanh", "mgu", "mingru")
EPOCHS = 20


def _distributions(cell: str) -> dict[str, optuna.distributions.BaseDistribution]:
    dists: dict[str, optuna.distributions.BaseDistribution] = {
        "cell_type": CategoricalDistribution(CELLS),
        "hidden_size": IntDistribution(16, 256, log=True),
        "num_layers": IntDistribution(1, 2),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": CategoricalDistribution((32, 64, 128)),
        "dropout": FloatDistribution(0.0, 0.5),
    }
    if cell == "lstm":
        dists["lstm.forget_bias"] = FloatDistribution(0.0, 2.0)
    return dists


def synthetic_trial(rng: np.random.Generator, number: int) -> FrozenTrial:
    """One finished synthetic trial with the attributes a worker records."""
    cell = CELLS[number % len(CELLS)]
    dists = _distributions(cell)
    lr = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-1))))
    params: dict[str, object] = {
        "cell_type": cell,
        "hidden_size": int(rng.integers(16, 257)),
        "num_layers": int(rng.integers(1, 3)),
        "learning_rate": lr,
        "batch_size": int(rng.choice([32, 64, 128])),
        "dropout": float(rng.uniform(0, 0.5)),
    }
    if cell == "lstm":
        params["lstm.forget_bias"] = float(rng.uniform(0, 2))
    final = 0.05 + 0.1 * abs(np.log10(lr) + 2.5) + 0.02 * CELLS.index(cell) + rng.gamma(2, 0.01)
    pruned = bool(rng.random() < 0.3)
    epochs = int(rng.integers(2, 6)) if pruned else EPOCHS
    trial = optuna.trial.create_trial(
        state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
        value=None if pruned else float(final),
        params=params,
        distributions=dists,
        intermediate_values={e: float(final + 0.5 * np.exp(-e / 4)) for e in range(epochs)},
        user_attrs={
            "cell_type": cell,
            "param_count": 4 * int(params["hidden_size"]) ** 2,  # type: ignore[call-overload]
            "device": "cpu",
            "seconds": float(epochs),
            "epochs_run": epochs,
            "seconds_per_epoch": 1.0,
            "torch_version": "2.13.0",
            "cellsearch_version": "0.1.0",
        },
    )
    trial.datetime_start = dt.datetime(2025, 1, 1) + dt.timedelta(seconds=10 * number)
    trial.datetime_complete = trial.datetime_start + dt.timedelta(seconds=epochs)
    return trial


def synthetic_trials(n: int, seed: int = 0) -> list[FrozenTrial]:
    """``n`` synthetic finished trials, cell types in rotation."""
    rng = np.random.default_rng(seed)
    trials = [synthetic_trial(rng, i) for i in range(n)]
    for i, trial in enumerate(trials):
        trial.number = i
    return trials


def context(n: int) -> ReportContext:
    """The report context of the synthetic study."""
    return ReportContext(
        study_name="bench-report",
        direction="minimize",
        metric="val_loss",
        n_trials=n,
        cell_types=CELLS,
        allocation="balanced",
        seed=0,
        status="completed",
    )


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time of ``fn`` over ``repeat`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def ensure_study(storage: str, name: str, n: int) -> None:
    """Create study ``name`` with ``n`` synthetic trials unless it exists."""
    if name in optuna.study.get_all_study_names(storage):
        return
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    start = time.perf_counter()
    study.add_trials(synthetic_trials(n))
    print(f"inserted {n} trials in {time.perf_counter() - start:.1f} s")


def main() -> None:
    """Parse the command line, run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage", default=None, help="Optuna RDB URL (default: temp SQLite)")
    parser.add_argument("--study", default="bench-report")
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--in-memory", action="store_true", help="skip storage entirely")
    parser.add_argument("--no-importance", action="store_true")
    args = parser.parse_args()
    ctx = context(args.trials)
    importance = not args.no_importance
    if args.in_memory:
        trials = synthetic_trials(args.trials)
        report_s, _ = timed(lambda: build_report(trials, ctx, importance=importance), args.repeat)
        print(f"report of {len(trials)} in-memory trials: {report_s:.3f} s")
        return
    with tempfile.TemporaryDirectory() as tmp:
        storage = args.storage or f"sqlite:///{Path(tmp) / 'bench.db'}"
        ensure_study(storage, args.study, args.trials)

        def load() -> list[FrozenTrial]:
            return optuna.load_study(study_name=args.study, storage=storage).get_trials(
                deepcopy=False
            )

        load_s, loaded = timed(load, args.repeat)
        trials = list(loaded)  # type: ignore[call-overload]
        report_s, _ = timed(lambda: build_report(trials, ctx, importance=importance), args.repeat)
    print(f"storage: {storage.split('://')[0]}; trials: {len(trials)}")
    print(f"load {load_s:.3f} s; report {report_s:.3f} s; ratio {report_s / load_s:.2f}")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
