"""Which pooler for many workers: the measurements behind the choice in docs/cluster.md.

On a PostgreSQL server of its own (:mod:`pg_server`) this measures, for each way an idle
worker can wait and each way a busy one can reach Optuna's storage:

1. **LISTEN**: the delay from a committed ``NOTIFY`` to the listener's wake-up, listening
   directly, through PgBouncer's session-mode entry, and through its transaction-mode entry
   (where a listener's session is not its own: nothing arrives);
2. **a server connection's cost**: the proportional memory (PSS) of an idle backend, which
   every listening worker holds on the server in either of the first two ways;
3. **Optuna's storage per trial**: a loop of ``ask``, a few ``suggest`` calls, four
   ``report`` calls and ``tell``, through ``RDBStorage`` directly, through PgBouncer in
   transaction mode (psycopg's prepared statements off) and through Optuna's gRPC storage
   proxy (``run_grpc_proxy_server``, on the same machine) to the same database;
4. what each way supports that cellsearch needs: LISTEN, the heartbeat storage (stale-trial
   recovery), and SQL to the service's own tables (the budget ledger) and to Optuna's (the
   adapter's batched writes and bulk reads).

Run from the repository root (needs ``pgbouncer``; ``grpcio`` for the proxy row)::

    .venv/bin/python benchmarks/pooler_options.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.service.pgbouncer import running_pgbouncer

import pg_server
from monitor import conninfo
from scale_out import database


def notify_latency(listen_url: str, server_url: str, n: int) -> list[float] | None:
    """Seconds from each committed NOTIFY to the listener's wake-up; None if none arrive."""
    import psycopg

    delays = []
    with psycopg.connect(conninfo(listen_url), autocommit=True, prepare_threshold=None) as listen:
        listen.execute("LISTEN bench")
        with psycopg.connect(conninfo(server_url), autocommit=True) as sender:
            for _ in range(n):
                start = time.perf_counter()
                sender.execute("NOTIFY bench")
                got = list(listen.notifies(timeout=2, stop_after=1))
                if not got:
                    return None
                delays.append(time.perf_counter() - start)
    return delays


def backend_pss(server_url: str) -> float:
    """MiB of proportional memory of one idle backend (read from /proc as root)."""
    import psycopg

    with psycopg.connect(conninfo(server_url), autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        conn.execute("SELECT 1")
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def trial_loop(storage: Any, n: int) -> float:
    """Seconds per trial of a minimal ask/suggest/report/tell loop on ``storage``."""
    import optuna

    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    for _ in range(n):
        trial = study.ask()
        x = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        trial.suggest_int("hidden", 4, 64)
        for epoch in range(4):
            trial.report(x / (epoch + 1), epoch)
        study.tell(trial, x)
    return (time.perf_counter() - start) / n


def storage_rows(url: str, bouncer_url: str, n: int) -> list[tuple[str, float | None]]:
    """Seconds per trial through each way (None: the way is not available here)."""
    import optuna

    rows: list[tuple[str, float | None]] = []
    direct = optuna.storages.RDBStorage(url)
    rows.append(("RDBStorage, direct", trial_loop(direct, n)))
    pooled = optuna.storages.RDBStorage(
        bouncer_url, engine_kwargs={"connect_args": {"prepare_threshold": None}}
    )
    rows.append(("RDBStorage, PgBouncer transaction mode", trial_loop(pooled, n)))
    try:
        from optuna.storages import GrpcStorageProxy, run_grpc_proxy_server
    except ImportError:
        rows.append(("GrpcStorageProxy (grpcio not installed)", None))
        return rows
    port = 13000 + int(time.time()) % 1000
    server = threading.Thread(target=run_grpc_proxy_server, args=(direct,),
                              kwargs={"host": "127.0.0.1", "port": port}, daemon=True)  # fmt: skip
    server.start()
    time.sleep(1.0)
    proxy = GrpcStorageProxy(host="127.0.0.1", port=port)
    rows.append(("GrpcStorageProxy -> RDBStorage", trial_loop(proxy, n)))
    proxy.close()
    return rows


SUPPORT = (
    (
        "| way | idle worker's LISTEN | heartbeats (stale-trial recovery) "
        "| SQL to the ledger and to Optuna's tables |"
    )
    + """
|---|---|---|---|
| direct | yes (its pooled connection) | yes | yes |
| PgBouncer, transaction mode | no (the session is not its own) | yes | yes |
| PgBouncer, session-mode entry for listeners | yes (one server connection each) | - | - |
| GrpcStorageProxy | no (no SQL) | no (not a heartbeat storage) | no: the ledger and the \
adapter need SQL beside it |
"""
)


def main(argv: list[str] | None = None) -> None:
    """Measure on a server of the benchmark's own and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifies", type=int, default=200)
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args(argv)
    with (
        pg_server.own_server() as server,
        database(server) as url,
        running_pgbouncer(url, pool_size=4) as bouncer,
    ):
        print("\nNOTIFY to wake-up (ms)\n\n| listening | p50 | p99 |\n|---|---|---|")
        for label, where in (("direct", url), ("PgBouncer session-mode entry",
                             bouncer.listen_url), ("PgBouncer transaction mode",
                             bouncer.url)):  # fmt: skip
            delays = notify_latency(where, url, args.notifies)
            if delays is None:
                print(f"| {label} | nothing arrives | - |")
                continue
            delays.sort()
            p99 = delays[int(0.99 * (len(delays) - 1))]
            print(f"| {label} | {statistics.median(delays) * 1e3:.2f} | {p99 * 1e3:.2f} |")
        print(f"\nAn idle backend's PSS: {backend_pss(url):.1f} MiB")
        print("\nOptuna storage, minimal trial (ask, 2 suggests, 4 reports, tell)\n")
        print("| way | ms/trial |\n|---|---|")
        for label, seconds in storage_rows(url, bouncer.url, args.trials):
            shown = "-" if seconds is None else f"{seconds * 1e3:.2f}"
            print(f"| {label} | {shown} |")
    print(SUPPORT)


if __name__ == "__main__":
    main()
