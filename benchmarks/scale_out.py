"""Simulated scale past this machine: up to hundreds of workers on one PostgreSQL.

Each worker is the real worker loop with simulated training (:mod:`sim_worker`: no
torch, so hundreds of light processes fit; they are forked from one parent that imported
everything once). A run starts ``N`` workers on a fresh database (directly, or through a
PgBouncer in transaction mode with the idle workers listening through its session-mode
entry), lets them register and go idle, then resumes a study whose budget holds
``trials`` units and times it from the resume (which notifies them) to ``completed``.

A study of ``size`` trials larger than the trials run is prefilled: its first
``size - trials`` trials are written as finished before the workers start (deals,
parameters, curves and values, in bulk into Optuna's tables: :mod:`prefill`), so the last
``trials`` trials run against a study of ``size``, after a ``VACUUM ANALYZE`` (what
autovacuum would have done while the study grew).

Reported per run (the server is the benchmark's own, :mod:`pg_server`, with
``pg_stat_statements``): trials per second; the claim's latency (its ``UPDATE``, as the
worker waits for it) at p50 and p99; statements (every one a round trip, ``BEGIN`` and
``COMMIT`` included) and the server's execution time per trial, also without the
statements that read a whole big study (each worker's first read of it into Optuna's
cache, once per worker and study: :data:`monitor.WHOLE_STUDY_ROWS`); the peak of waiting
locks (sampled every 0.2 s) and the deadlocks; the peak of server connections; the five
statements the server spent most time on and the fifteen it ran most often (``--json``
only); and whether the study came out exact (``n_trials`` counted trials, one per deal,
no trial left running or waiting, the ledger at ``n_trials``). Run from the repository
root::

    .venv/bin/python benchmarks/scale_out.py --plan full
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_server
import sim_worker

TIMEOUT_S = 1800.0
PLANS = {  # (workers, study size, trials run, mode); the trial's seconds follow from N
    "quick": [(8, 1000, 300, "direct"), (8, 1000, 300, "pooler")],
    "full": [
        *[(n, 1000, 1000, mode) for mode in ("direct", "pooler") for n in (1, 8, 64, 256)],
        *[(8, size, 1000, mode) for mode in ("direct", "pooler") for size in (10_000, 100_000)],
    ],
}


@dataclass(frozen=True)
class Run:
    """One configuration of the benchmark."""

    workers: int
    size: int
    trials: int
    mode: str  # direct | pooler
    trial_s: float
    given_back: bool = False  # a unit given back before the run: no claim is fresh


def trial_seconds(workers: int, rate: float, epochs: int) -> float:
    """A simulated trial's length such that ``workers`` offer about ``rate`` trials/s
    (the same load on the server whatever N; at least 5 ms per epoch)."""
    return max(workers / rate, 0.005 * epochs)


def make_spec(name: str, size: int, epochs: int) -> Any:
    from cellsearch.search.study.limits import SpecLimits, parse_spec

    return parse_spec(
        {
            "name": name,
            "task": {"kind": "adding", "seq_len": 4, "n_train": 8, "n_val": 4, "n_test": 4},
            "space": {
                "cell_type": ["lstm", "gru", "rnn_tanh"],
                "hidden_size": {"low": 4, "high": 64, "log": True},
                "learning_rate": {"low": 1e-4, "high": 0.1, "log": True},
            },
            "budget": {"n_trials": size, "max_epochs": epochs},
            "sampler": "random",
            "pruner": "median",
            "seed": 3,
        },
        SpecLimits(max_trials=max(size, SpecLimits().max_trials)),  # a server raised to it
    )


@contextlib.contextmanager
def database(server_url: str) -> Iterator[str]:
    """A fresh database on the server, migrated, dropped on exit."""
    import psycopg
    from sqlalchemy.engine import make_url

    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import dispose_all
    from cellsearch.service.store.migrate import upgrade

    base = make_url(server_url)
    name = f"scale_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(Settings(database_url=url))
        yield url
    finally:
        dispose_all()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_study(url: str, run: Run, epochs: int) -> str:
    """Create the study (paused), prefilled to ``size - trials`` finished trials."""
    from sqlalchemy import update

    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import (
        connection_scope,
        dispose_all,
        engine_for,
        optuna_storage,
    )
    from cellsearch.service.store.tables import StudyRecord
    from cellsearch.service.studies.operations import change_status, create_study

    settings = Settings(database_url=url, max_trials=max(run.size, Settings().max_trials))
    spec = make_spec("scale", run.size, epochs)
    engine = engine_for(settings)
    create_study(engine=engine, storage=optuna_storage(settings), spec=spec)
    change_status(engine=engine, name=spec.name, action="pause")
    done = run.size - run.trials
    if done:
        import prefill

        prefill.add_finished_bulk(url, spec, done)
        with connection_scope(engine) as conn:
            conn.execute(
                update(StudyRecord).where(StudyRecord.name == spec.name)
                .values(claimed=done, issued=done, dealt=done)
            )  # fmt: skip
        # A study that grew to this size over days was vacuumed and analyzed on the way
        # (autovacuum); one written in a minute was not yet: the planner's statistics
        # would be of the empty tables.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    if run.given_back:  # as after one requeue: a unit claimed and given back
        with connection_scope(engine) as conn:
            conn.execute(
                update(StudyRecord).where(StudyRecord.name == spec.name)
                .values(issued=StudyRecord.issued + 1)
            )  # fmt: skip
    dispose_all()
    return spec.name


def fork_workers(n: int, settings: Any, folder: Path) -> list[int]:
    """Fork ``n`` simulated workers; their output goes to ``folder/workers.log``."""
    from cellsearch.service.store.db import dispose_all

    dispose_all()  # no connection of the parent's may be shared with a child
    log = os.open(folder / "workers.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    pids = []
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.dup2(log, 1)
                os.dup2(log, 2)
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                sim_worker.run_child(settings, folder / f"worker-{i}.json")
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    os.close(log)
    return pids


def stop_workers(pids: list[int]) -> None:
    """SIGTERM every worker and reap it (SIGKILL after 60 s)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped already (a worker that exited early)
                break
            if done:
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def run_one(server_url: str, run: Run, epochs: int, folder: Path) -> dict[str, Any]:
    """Run one configuration; return its measurements."""
    from tests.service.pgbouncer import running_pgbouncer

    import monitor

    with database(server_url) as url:
        name = prepare_study(url, run, epochs)
        with contextlib.ExitStack() as stack:
            settings = monitor.worker_settings(url)
            if run.mode == "pooler":
                bouncer = stack.enter_context(running_pgbouncer(url, pool_size=20))
                settings = monitor.worker_settings(
                    bouncer.url, pooler=True, listen_url=bouncer.listen_url, max_listeners=16
                )
            run_folder = Path(tempfile.mkdtemp(dir=folder))
            pids = fork_workers(run.workers, settings, run_folder)
            try:
                measured = monitor.measure(url, name, run.workers, pids, TIMEOUT_S)
            except Exception as exc:  # say why, with the workers' last words
                log = (run_folder / "workers.log").read_text(errors="replace").splitlines()
                errors = [line for line in log if "Error" in line or "FATAL" in line]
                raise RuntimeError(f"{exc}; {(errors or log or [''])[-1][:200]}") from exc
            finally:
                stop_workers(pids)
            measured.update(monitor.worker_stats(run_folder, measured))
            measured.update(monitor.integrity(url, name, run.size))
    return {**run.__dict__, **measured}


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = ("| workers | mode | study size | trials run | trial s | trials/s | claim p50 ms "
            "| claim p99 ms | same, first claims left out | statements/trial | server ms/trial "
            "| same, after first reads "
            "| lock waits (peak) "
            "| deadlocks | connections (peak) | errors | exact |")  # fmt: skip
    lines = [head, "|" + "---|" * 17]
    for r in rows:
        if "failed" in r:
            lines.append(
                f"| {r['workers']} | {r['mode']} | {r['size']:,} | {r['trials']:,} "
                f"| {r['trial_s']:.2f} | failed: {r['failed']} |" + " |" * 11
            )
            continue
        lines.append(
            f"| {r['workers']} | {r['mode']} | {r['size']:,} | {r['trials']:,} "
            f"| {r['trial_s']:.2f} | {r['trials_per_s']:.1f} | {r['claim_p50_ms']:.1f} "
            f"| {r['claim_p99_ms']:.1f} | {r['claim_p99_after_first_ms']:.1f} "
            f"| {r['statements_per_trial']:.1f} "
            f"| {r['server_ms_per_trial']:.2f} "
            f"| {r['server_ms_per_trial_after_first_reads']:.2f} "
            f"| {r['lock_waits_peak']} | {r['deadlocks']} "
            f"| {r['connections_peak']} | {r['errors']} | {r['exact']} |"
        )
    return "\n".join(lines)


_GIVEN_BACK = "; every study started as after one requeue"


def main(argv: list[str] | None = None) -> None:
    """Run the plan's configurations on a server of the benchmark's own."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", choices=sorted(PLANS), default="quick")
    parser.add_argument("--only", help="configurations as N:size:trials:mode, comma-separated")
    parser.add_argument(
        "--rate", type=float, default=40.0,
        help="trials/s the workers offer together (sets the trial's length)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument(
        "--given-back", action="store_true",
        help="start each study as after one requeue (a unit given back): no claim is "
        "fresh, every deal is picked under the ledger's deal lock",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    plan = PLANS[args.plan]
    if args.only:
        plan = [(int(n), int(s), int(t), m) for n, s, t, m in
                (item.split(":") for item in args.only.split(","))]  # fmt: skip
    runs = [Run(n, s, t, m, trial_seconds(n, args.rate, args.epochs), args.given_back)
            for n, s, t, m in plan]  # fmt: skip
    sim_worker.prepare(epoch_s=0.0)  # replaced per run below
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="cellsearch-scale-") as tmp,
        pg_server.own_server(max_connections=args.max_connections) as server,
    ):
        for run in runs:
            sim_worker.prepare_epochs(run.trial_s / args.epochs)
            try:
                row = run_one(server, run, args.epochs, Path(tmp))
            except Exception as exc:  # a configuration past the server's limits: say so
                row = {**run.__dict__, "failed": str(exc).strip().splitlines()[-1][:160]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    given_back = _GIVEN_BACK if args.given_back else ""
    print(f"\nScale-out (simulated training, {args.epochs} epochs per trial, the workers "
          f"offering about {args.rate:g} trials/s; server max_connections "
          f"{args.max_connections}; {os.cpu_count()} CPUs{given_back})\n")  # fmt: skip
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    ran = [r["claim_p99_ms"] for r in rows if "failed" not in r]
    print(json.dumps({"median_claim_p99_ms": statistics.median(ran) if ran else None}))


if __name__ == "__main__":
    main()
