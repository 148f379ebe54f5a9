"""What the scale-out benchmark measures on the server and in the workers, and its checks."""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

SAMPLE_S = 0.2
# A statement that returns at least this many rows a call reads a whole big study: a
# worker's first read of a study into Optuna's cache (once per worker and study). The
# server's time is reported with and without them (a 1,000-trial run on a 100,000-trial
# study pays eight of them, which a long-running worker pays once).
WHOLE_STUDY_ROWS = 10_000


def conninfo(url: str) -> str:
    """A SQLAlchemy URL as libpq connection info."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def worker_settings(
    url: str, *, pooler: bool = False, listen_url: str | None = None,
    max_listeners: int | None = None,
) -> Any:  # fmt: skip
    """The simulated workers' settings: the defaults of ``cellsearch worker``."""
    from cellsearch.service.settings import Settings

    return Settings(
        database_url=url,
        db_pooler="pgbouncer" if pooler else "none",
        listen_url=listen_url,
        max_listeners=max_listeners,
    )


def _registered(conn: Any) -> int:
    row = conn.execute("SELECT count(*) FROM cellsearch_workers").fetchone()
    return int(row[0])


def measure(url: str, name: str, n: int, pids: list[int], timeout: float) -> dict[str, Any]:
    """Wait for the ``n`` workers to register, resume study ``name`` (the notification
    wakes them), and sample the server until it completes."""
    import psycopg

    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import dispose_all, engine_for
    from cellsearch.service.studies.operations import change_status

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        deadline = time.monotonic() + 600
        while _registered(conn) < n:
            _check_alive(pids)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{_registered(conn)} of {n} workers registered")
            time.sleep(0.5)
        time.sleep(3.0)  # every worker idle, waiting
        conn.execute("SELECT pg_stat_statements_reset()")
        before = _database_counters(conn)
        start = time.perf_counter()
        change_status(engine=engine_for(Settings(database_url=url)), name=name, action="resume")
        dispose_all()
        peak_conn = peak_locks = 0
        while True:
            _check_alive(pids)
            connections, locks, status = conn.execute(
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()), (SELECT count(*) FROM pg_locks WHERE NOT granted),"
                " (SELECT status FROM cellsearch_studies WHERE name = %s)",
                (name,),
            ).fetchone() or (0, 0, None)
            peak_conn, peak_locks = max(peak_conn, connections), max(peak_locks, locks)
            if status == "completed":
                break
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"study {name} not completed after {timeout:.0f} s")
            time.sleep(SAMPLE_S)
        seconds = time.perf_counter() - start
        after = _database_counters(conn)
        statements, server_ms, whole_ms, whole_calls = conn.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time), 0), "
            "coalesce(sum(total_exec_time) FILTER (WHERE rows >= %(whole)s * calls), 0), "
            "coalesce(sum(calls) FILTER (WHERE rows >= %(whole)s * calls), 0) "
            "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            {"whole": WHOLE_STUDY_ROWS},
        ).fetchone() or (0, 0, 0, 0)
        top, most = (
            conn.execute(
                "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90), calls, total_exec_time "
                "FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database "
                f"WHERE datname = current_database()) ORDER BY {order} DESC LIMIT {limit}"
            ).fetchall()
            for order, limit in (("total_exec_time", 5), ("calls", 15))
        )
    return {
        "seconds": seconds,
        "connections_peak": peak_conn,
        "lock_waits_peak": peak_locks,
        "deadlocks": after["deadlocks"] - before["deadlocks"],
        "transactions": after["xacts"] - before["xacts"],
        "statements": int(statements),
        "server_ms": float(server_ms),
        "whole_reads_ms": float(whole_ms),
        "whole_reads": int(whole_calls),
        "top_statements": [  # where the server's time went: text, calls, ms
            [text, int(calls), round(float(ms), 1)] for text, calls, ms in top
        ],
        "most_called": [  # the round trips: text, calls, ms
            [text, int(calls), round(float(ms), 1)] for text, calls, ms in most
        ],
    }


def _check_alive(pids: list[int]) -> None:
    for pid in pids:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            raise RuntimeError(f"worker {pid} exited early (status {status})")


def _database_counters(conn: Any) -> dict[str, int]:
    time.sleep(1.1)  # the server publishes a backend's counters at most once a second
    row = conn.execute(
        "SELECT xact_commit + xact_rollback, deadlocks FROM pg_stat_database "
        "WHERE datname = current_database()"
    ).fetchone()
    return {"xacts": int(row[0]), "deadlocks": int(row[1])}


def worker_stats(folder: Path, measured: dict[str, Any]) -> dict[str, Any]:
    """The workers' own measurements (claims, trials, logged warnings), per trial."""
    claims: list[float] = []
    later: list[float] = []  # each worker's claims but its first (made while all start)
    trials = errors = 0
    said: Counter[str] = Counter()  # what the warnings said, numbers left out
    for path in sorted(folder.glob("worker-*.json")):
        stats = json.loads(path.read_text())
        claims.extend(stats["claims"])
        later.extend(stats["claims"][1:])
        trials += stats["trials"]
        errors += len(stats["errors"])
        said.update(re.sub(r"\d+", "N", message)[:300] for message in stats["errors"])
    claims.sort()
    ran = max(trials, 1)
    return {
        "trials_run": trials,
        "trials_per_s": trials / measured["seconds"],
        "claim_p50_ms": 1e3 * statistics.median(claims) if claims else float("nan"),
        "claim_p99_ms": _p99_ms(claims),
        "claim_p99_after_first_ms": _p99_ms(sorted(later)),
        "statements_per_trial": measured["statements"] / ran,
        "server_ms_per_trial": measured["server_ms"] / ran,
        "server_ms_per_trial_after_first_reads": (
            (measured["server_ms"] - measured["whole_reads_ms"]) / ran
        ),
        "transactions_per_trial": measured["transactions"] / ran,
        "errors": errors,
        "errors_said": said.most_common(3),
    }


def _p99_ms(ordered: list[float]) -> float:
    return 1e3 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else float("nan")


def integrity(url: str, name: str, size: int) -> dict[str, Any]:
    """Whether the study came out exact: ``size`` counted trials, one per deal, nothing
    left running or waiting, the ledger at ``size``."""
    import optuna

    from cellsearch.search.record import Attr, is_counted
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import dispose_all, engine_for, optuna_storage
    from cellsearch.service.studies.operations import get_study

    settings = Settings(database_url=url)
    trials = optuna.load_study(study_name=name, storage=optuna_storage(settings)).get_trials(
        deepcopy=False
    )
    counted = [t for t in trials if is_counted(t)]
    deals = [t.user_attrs.get(Attr.DEAL) for t in counted]
    unfinished = [t.number for t in trials if not t.state.is_finished()]
    record = get_study(engine=engine_for(settings), name=name)
    dispose_all()
    exact = (
        len(counted) == size
        and len(set(deals)) == size
        and not unfinished
        and (record.claimed, record.status) == (size, "completed")
    )
    return {
        "counted": len(counted),
        "duplicates": len(deals) - len(set(deals)),
        "lost": size - len(set(deals)),
        "exact": "yes" if exact else "NO",
    }
