"""Benchmark: the cross-task report of a suite of many large studies.

Usage::

    python benchmarks/suite_report.py                        # 20 studies x 1,000 trials
    python benchmarks/suite_report.py --studies 40 --trials 2000
    python benchmarks/suite_report.py --storage sqlite:///suite-bench.db   # time the load too

The trials are made in memory (or, with ``--storage``, read back from that database,
which is filled on first use). What is timed is everything after the trials are loaded:
one per-study report per study (:func:`cellsearch.search.report.suite.study_report_for_suite`),
the suite report (:func:`~cellsearch.search.report.suite.build_suite_report`) and its
HTML page. Each is run ``--repeat`` times and the median is printed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.report import ReportContext
from cellsearch.search.report.suite import SuiteTask, build_suite_report, study_report_for_suite
from cellsearch.search.report.suite_model import SuiteReport
from cellsearch.service.suites.page import render_suite_html

CELLS = ("lstm", "gru", "rnn_tanh", "mgu", "mingru")
EPOCHS = 10
DISTRIBUTIONS = {
    "cell_type": CategoricalDistribution(CELLS),
    "hidden_size": IntDistribution(16, 256, log=True),
    "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
}


def synthetic_study(index: int, n: int) -> list[FrozenTrial]:
    """``n`` finished trials of one task: cells in rotation, a task-specific cell effect."""
    rng = np.random.default_rng(index)
    effect = rng.normal(0.0, 0.02, len(CELLS)) + 0.01 * np.arange(len(CELLS))  # (k,)
    scale = float(10 ** rng.uniform(-2, 1))
    trials = []
    for number in range(n):
        cell = number % len(CELLS)
        lr = float(np.exp(rng.uniform(np.log(1e-4), np.log(1e-1))))
        final = scale * (0.1 + 0.05 * abs(np.log10(lr) + 2.5) + effect[cell] + rng.gamma(2, 0.01))
        pruned = bool(rng.random() < 0.3)
        epochs = int(rng.integers(2, 5)) if pruned else EPOCHS
        trial = optuna.trial.create_trial(
            state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
            value=None if pruned else float(final),
            params={"cell_type": CELLS[cell], "hidden_size": int(rng.integers(16, 257)),
                    "learning_rate": lr},
            distributions=DISTRIBUTIONS,
            intermediate_values={e: float(final * (1 + np.exp(-e))) for e in range(epochs)},
            user_attrs={"cell_type": CELLS[cell], "param_count": 1000, "seconds": float(epochs),
                        "epochs_run": epochs, "device": "cpu"},
        )  # fmt: skip
        trial.number = number
        trials.append(trial)
    return trials


def context(index: int, n: int) -> ReportContext:
    return ReportContext(
        study_name=f"bench-task-{index}", direction="minimize", metric="val_loss", n_trials=n,
        cell_types=CELLS, allocation="balanced", seed=0, status="completed",
    )  # fmt: skip


def load(storage: str | None, n_studies: int, n: int) -> tuple[list[list[FrozenTrial]], float]:
    """Every study's trials, and the seconds their load took (0 in memory)."""
    if storage is None:
        return [synthetic_study(i, n) for i in range(n_studies)], 0.0
    existing = set(optuna.get_all_study_names(storage))
    for i in range(n_studies):
        if f"bench-task-{i}" not in existing:
            study = optuna.create_study(study_name=f"bench-task-{i}", storage=storage)
            study.add_trials(synthetic_study(i, n))
    start = time.perf_counter()
    loaded = [
        optuna.load_study(study_name=f"bench-task-{i}", storage=storage).get_trials(deepcopy=False)
        for i in range(n_studies)
    ]
    return loaded, time.perf_counter() - start


def suite_report(studies: list[list[FrozenTrial]]) -> SuiteReport:
    n = len(studies[0])
    tasks = [
        SuiteTask(f"task-{i}", f"bench-task-{i}", "adding", "completed", n, n,
                  study_report_for_suite(trials, context(i, n)))
        for i, trials in enumerate(studies)
    ]  # fmt: skip
    return build_suite_report("bench", tasks, cell_types=CELLS)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``fn`` over ``repeat`` runs, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--studies", type=int, default=20)
    parser.add_argument("--trials", type=int, default=1000, help="trials per study")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage", default=None, help="Optuna RDB URL (default: in memory)")
    args = parser.parse_args()
    studies, load_s = load(args.storage, args.studies, args.trials)
    report_s, report = timed(lambda: suite_report(studies), args.repeat)
    page_s, _ = timed(lambda: render_suite_html(report), args.repeat)
    where = args.storage.split("://")[0] if args.storage else "in memory"
    print(f"{args.studies} studies x {args.trials} trials ({where})")
    if args.storage:
        print(f"load {load_s:.2f} s")
    print(f"suite report {report_s:.3f} s; page {page_s:.3f} s; total {report_s + page_s:.3f} s")
    print(f"verdict: {report.verdict}")


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
