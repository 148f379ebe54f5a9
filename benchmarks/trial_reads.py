"""A few trials' child rows read in one query or in one per table: the server's time.

``AdapterStorage`` reads the child tables (parameters, values, intermediate values, user
and system attributes) of a few listed trials in one ``UNION ALL`` query, and of more in
one query per table (``optuna_adapter._frozen.build``). This times both on a server of
the benchmark's own (``pg_stat_statements``' execution time, summed over the statements
of a read) and on the client (wall time of a read), on a study of 1,000 trials with 20
user attributes, 2 parameters and 2 reported values each, reading 1 and 2 trials (a
running trial's read, and the trial cache's usual refresh).

Run from the repository root (needs the PostgreSQL server binaries)::

    .venv/bin/python benchmarks/trial_reads.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import optuna
from sqlalchemy import Connection, text

from pg_server import own_server
from worker_bench import postgres_database

READS = 500
STATEMENTS = text(
    "SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(calls), 0) FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query LIKE 'SELECT%' AND query NOT LIKE '%pg_stat_statements%'"
)


def _objective(trial: optuna.Trial) -> float:
    for i in range(20):
        trial.set_user_attr(f"attr_{i}", i)
    trial.report(1.0, 0)
    trial.report(0.5, 1)
    return trial.suggest_float("x", 0, 1) + trial.suggest_float("y", 0, 1)


def _time(
    conn: Connection, read: Callable[[Connection, list[int]], Any], ids: list[int]
) -> tuple[float, float, float]:
    """Server microseconds, client microseconds and statements per read of ``ids``."""
    conn.execute(text("SELECT pg_stat_statements_reset()"))
    conn.commit()
    walls = []
    for _ in range(READS):
        start = time.perf_counter()
        read(conn, ids)
        walls.append(time.perf_counter() - start)
    conn.commit()
    server_ms, calls = conn.execute(STATEMENTS).one()
    return server_ms / READS * 1e3, statistics.median(walls) * 1e6, calls / READS


def main() -> None:
    from cellsearch.search.optuna_adapter import AdapterStorage, _frozen

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    with own_server() as url, postgres_database(url) as db:
        storage = AdapterStorage(db.url)
        optuna.create_study(storage=storage, study_name="reads").optimize(_objective, 1000)
        with storage.engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
            for ids in ([700], [700, 701]):
                ways: dict[str, Callable[[Connection, list[int]], Any]] = {
                    "one query": lambda c, chosen: _frozen._few(c, chosen),
                    "one per table": lambda c, chosen: [
                        list(rows) for rows in _frozen._per_table(c, chosen)
                    ],
                }
                for way, read in ways.items():
                    server, client, statements = _time(conn, read, ids)
                    rows.append(f"| {len(ids)} | {way} | {statements:.0f} | {server:.0f} "
                                f"| {client:.0f} |")  # fmt: skip
    print(f"\nChild rows of listed trials, 1,000-trial study, medians of {READS} reads\n")
    print("| trials read | how | statements | server us per read | client us per read |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
