"""The trial cache's refresh with many trials running: its cost grows with the workers.

Optuna's trial cache (``_CachedStorage``) keeps finished trials and, on every read of a
study's trials, reads again every trial it has seen unfinished (and the newer ones): a
worker whose study has ``N`` trials running reads those ``N`` trials, their parameters,
reported values and attributes, each time its pruner, its deal or its keeper asks for
the study's trials. With one trial running per worker, ``N`` is the number of workers.
This times that read (``AdapterStorage._get_trials`` as the cache calls it) for ``N``
running trials of 20 user attributes, 3 parameters and 4 reported values each: the
client's wall and CPU time per refresh (medians), and the server's time
(``pg_stat_statements``), on a server of the benchmark's own.

Beside it, the same for a read that wants no running trial through the adapter's cache
(:class:`~cellsearch.search.optuna_adapter.TrialCache`: the pruner's read of complete
trials), with nothing changed since its last read: it reads only what finished or is
new, here nothing.

Run from the repository root (needs the PostgreSQL server binaries)::

    .venv/bin/python benchmarks/cache_refresh.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import text

from pg_server import own_server
from worker_bench import postgres_database

SERVER_MS = text(
    "SELECT coalesce(sum(total_exec_time), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query LIKE 'SELECT%' AND query NOT LIKE '%pg_stat_statements%'"
)


def _running_trials(storage: object, name: str, n: int) -> tuple[int, list[int]]:
    """A study of ``n`` running trials as a worker leaves them mid-training."""
    from cellsearch.search.optuna_adapter import new_trial

    study = optuna.create_study(storage=storage, study_name=name)  # type: ignore[arg-type]
    ids = []
    for i in range(n):
        trial = new_trial(study, {f"attr_{k}": {"k": k, "of": [i, k]} for k in range(20)})
        trial.suggest_categorical("cell_type", ["lstm", "gru", "rnn_tanh"])
        trial.suggest_int("hidden_size", 4, 64, log=True)
        trial.suggest_float("learning_rate", 1e-4, 0.1, log=True)
        for step in range(4):
            trial.report(1.0 / (step + 1), step)
        ids.append(trial._trial_id)
    return study._study_id, ids


def main(argv: list[str] | None = None) -> None:
    from cellsearch.search.optuna_adapter import AdapterStorage, TrialCache

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--running", type=int, nargs="+", default=[8, 64, 256, 1024])
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with own_server() as url, postgres_database(url) as db:
        storage = AdapterStorage(db.url)
        for n in args.running:
            study_id, ids = _running_trials(storage, f"running-{n}", n)
            refresh = (study_id, None, set(ids), min(ids) - 1)  # as the cache asks
            cache = TrialCache(storage)
            cache.get_all_trials(study_id, deepcopy=False)  # its first read: the whole study
            complete = (TrialState.COMPLETE,)
            optunas = _timed(storage, args.reads, partial(storage._get_trials, *refresh), n)
            read_complete = partial(cache.get_all_trials, study_id, deepcopy=False, states=complete)
            narrow = _timed(storage, args.reads, read_complete, 0)
            rows.append(f"| {n:,} | {optunas[0]:.1f} | {optunas[1]:.1f} | {optunas[2]:.1f} "
                        f"| {1e3 * optunas[0] / n:.0f} | {narrow[0]:.2f} | {narrow[1]:.2f} "
                        f"| {narrow[2]:.2f} |")  # fmt: skip
    print(f"\nThe trial cache's refresh of N running trials, medians of {args.reads} reads\n")
    print(
        "| trials running | client ms per refresh | client CPU ms | server ms | us per trial "
        "| read of complete trials (TrialCache): client ms | client CPU ms | server ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def _timed(
    storage: Any, reads: int, read: Callable[[], list[Any]], expected: int
) -> tuple[float, ...]:
    """Median client wall and CPU ms of ``reads`` calls of ``read`` (each returning
    ``expected`` trials), and the server's mean ms per call."""
    read()
    with storage.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_statements_reset()"))
        conn.commit()
    walls, cpus = [], []
    for _ in range(reads):
        wall, cpu = time.perf_counter(), time.process_time()
        assert len(read()) == expected
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    with storage.engine.connect() as conn:
        server_ms = conn.scalar(SERVER_MS) / reads
    return 1e3 * statistics.median(walls), 1e3 * statistics.median(cpus), server_ms


if __name__ == "__main__":
    main()
