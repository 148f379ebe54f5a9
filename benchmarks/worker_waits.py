"""Idle workers and a worker's memory: what ``workers.py --only idle|wakeup|memory`` runs.

* **idle**: ``n`` real ``cellsearch worker`` processes with nothing to do on a throwaway
  PostgreSQL database. After a warm-up (their back-off grows to its ceiling in about two
  minutes), the server's transactions in that database (``pg_stat_database``, read over a
  connection to another database, so the reading adds none) are counted for a window, and
  the connections they hold are sampled. Reported per idle worker per minute.
* **wakeup**: idle workers that have backed off; a one-trial study is submitted ``k``
  times; the delay from the submission's commit to the first claim (the ledger's
  ``last_claim_at``, written by the worker with the same clock).
* **memory**: one worker on a SQLite file, idle before any study, while it runs a study
  of the quick-start's size (``examples/quickstart.yaml``, fewer trials) and idle after
  it: RSS, private and proportional memory (``/proc/PID/smaps_rollup``), the peak while
  it trains; and, as the floor, a plain process that imports torch and trains the quick
  start's largest model for an epoch with Adam (:func:`torch_floor`).

``--baseline-src DIR`` runs the same with the workers of another source tree (e.g.
``git archive <rev> src | tar -x -C DIR``), in the same invocation, on a database that
tree migrated (:func:`tree_database`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from worker_bench import MIN_TASK, Database, Processes, _settings, wait_for, workers

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SUBMIT = """
import json, sys, time
from cellsearch.search.study.limits import parse_spec
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.studies.operations import create_study
settings = Settings(database_url=sys.argv[1])
spec = parse_spec(json.loads(sys.argv[2]))
create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
print(time.time())
"""


def submit(db: Database, data: dict[str, Any], src: Path | None) -> float:
    """Submit the spec ``data`` with the tree's own code (its spec model and its ledger);
    return the time the submission committed."""
    if src is None:
        from cellsearch.search.study.limits import parse_spec
        from cellsearch.service.store.db import engine_for, optuna_storage
        from cellsearch.service.studies.operations import create_study

        settings = _settings(db.url)
        spec = parse_spec(data)
        create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
        return time.time()
    done = subprocess.run([sys.executable, "-c", SUBMIT, db.url, json.dumps(data)],
                          env={**os.environ, **_env(src)}, check=True, capture_output=True,
                          text=True)  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def _xacts(db: Database) -> tuple[int, int]:
    """The database's transactions so far and its open connections, read from ``postgres``."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db.url)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit + xact_rollback, (SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s) FROM pg_stat_database WHERE datname = %s",
            (url.database, url.database),
        ).fetchone()
    assert row is not None  # pg_stat_database has a row for every database
    return int(row[0]), int(row[1])


def _env(src: Path | None) -> dict[str, str]:
    return {"PYTHONPATH": str(src / "src")} if src else {}


@contextmanager
def tree_database(db: Database, src: Path | None, folder: Path) -> Iterator[Database]:
    """``db`` itself for this tree; for another tree, a fresh database beside it (a SQLite
    file, or a database on the same server) that tree's ``cellsearch migrate`` made."""
    if src is None:
        yield db
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(db.url)
    name = f"baseline_{uuid.uuid4().hex[:8]}"
    if url.get_backend_name() == "sqlite":
        other = url.set(database=str(folder / f"{name}.db"))
    else:
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        other = url.set(database=name)
    made = Database(db.label, other.render_as_string(hide_password=False))
    subprocess.run([sys.executable, "-m", "cellsearch", "migrate", "--database-url", made.url],
                   env={**os.environ, **_env(src)}, check=True, capture_output=True)  # fmt: skip
    try:
        yield made
    finally:
        if url.get_backend_name() != "sqlite":
            from cellsearch.service.store.db import dispose_all

            dispose_all()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def idle(db: Database, n: int, folder: Path, *, warmup: float, window: float,
         src: Path | None = None) -> dict[str, float]:  # fmt: skip
    """Transactions per idle worker per minute, and connections per idle worker."""
    with workers(db, n, folder, {"CELLSEARCH_POLL_INTERVAL": "1", **_env(src)}) as procs:
        time.sleep(warmup)
        procs.check()
        from cellsearch.service.store.db import dispose_all

        dispose_all()  # this process's own pooled connections are no worker's
        before, _ = _xacts(db)
        held = []
        end = time.monotonic() + window
        while time.monotonic() < end:
            held.append(_xacts(db)[1])
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        procs.check()
        time.sleep(1.5)  # the server publishes a backend's counters at most once a second
        after, _ = _xacts(db)
    return {
        "per_worker_minute": (after - before) / n / (window / 60),
        "connections_per_worker": max(held) / n,
    }


def wakeup(db: Database, n: int, folder: Path, *, submissions: int, backoff: float,
           src: Path | None = None) -> list[float]:  # fmt: skip
    """Seconds from each submission's commit to the study's first claim."""
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.studies.operations import get_study

    settings = _settings(db.url)
    engine = engine_for(settings)
    delays = []
    env = {"CELLSEARCH_POLL_INTERVAL": "1", **_env(src)}
    with workers(db, n, folder, env) as procs:
        time.sleep(backoff)  # let their back-off grow
        for i in range(submissions):
            name = f"wake-{i}-{uuid.uuid4().hex[:6]}"
            committed = submit(db, _minimal(name), src)

            def claimed(name: str = name) -> bool:
                procs.check()
                return get_study(engine=engine, name=name).last_claim_at is not None

            wait_for("the first claim", claimed, timeout=300)
            at = get_study(engine=engine, name=name).last_claim_at
            assert at is not None
            at = at if at.tzinfo else at.replace(tzinfo=UTC)
            delays.append(at.timestamp() - committed)
            wait_for("the study", partial(_completed, engine, name), timeout=300)
            time.sleep(backoff / 2)  # idle again, backed off
    return delays


def _completed(engine: Any, name: str) -> bool:
    from cellsearch.service.studies.operations import get_study

    return get_study(engine=engine, name=name).status == "completed"


def _minimal(name: str) -> dict[str, Any]:
    return {"name": name, "task": MIN_TASK, "space": {"cell_type": ["gru"], "hidden_size": 1},
            "budget": {"n_trials": 1, "max_epochs": 1}, "pruner": "none"}  # fmt: skip


def _quickstart(name: str, n_trials: int) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    data.update(name=name, budget={**data["budget"], "n_trials": n_trials})
    return dict(data)


FLOOR = """
import sys, torch
from torch import nn
torch.set_num_threads(1)
torch.manual_seed(0)
x, y = torch.rand(1200, 30, 2), torch.rand(1200, 1)
lstm, head = nn.LSTM(2, 64, batch_first=True), nn.Linear(64, 1)
optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=1e-3)
for i in range(0, 1200, 32):
    out, _ = lstm(x[i : i + 32])
    loss = nn.functional.mse_loss(head(out[:, -1]), y[i : i + 32])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
print("ready", flush=True)
sys.stdin.read()
"""


def torch_floor() -> Any:
    """The memory of a process that does only what any trial must: import torch and train
    the quick start's largest model (LSTM, hidden 64, T=30) for an epoch with Adam; no
    cellsearch, Optuna or database. What a worker holds above it is the service's."""
    from cellsearch.search.worker.memory import usage

    proc = subprocess.Popen([sys.executable, "-c", FLOOR], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return usage(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def memory(db: Database, folder: Path, *, n_trials: int, src: Path | None = None) -> dict[str, Any]:
    """One worker's memory (MiB) idle, at its peak while it trains quick-start trials, and
    idle again after the study."""
    from cellsearch.search.worker.memory import usage
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.studies.operations import get_study

    settings = _settings(db.url)
    with workers(db, 1, folder, _env(src)) as procs:
        (proc,) = procs.procs
        time.sleep(3)
        before = usage(proc.pid)
        name = f"mem-{uuid.uuid4().hex[:6]}"
        submit(db, _quickstart(name, n_trials), src)
        peak = before
        deadline = time.monotonic() + 900
        while get_study(engine=engine_for(settings), name=name).status != "completed":
            procs.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"study {name} not completed in 900 s")
            now = usage(proc.pid)
            if now is not None and peak is not None and now.rss > peak.rss:
                peak = now
            time.sleep(0.25)
        time.sleep(5)  # idle again: the worker lets go of the study's objects
        after = usage(proc.pid)
    return {"idle before": before, "training (peak RSS)": peak, "idle after": after}


def idle_rows(label: str, figures: dict[str, float]) -> str:
    """A table row of :func:`idle`."""
    return (f"| {label} | {figures['per_worker_minute']:.1f} "
            f"| {figures['connections_per_worker']:.2f} |")  # fmt: skip


def wakeup_row(label: str, delays: list[float]) -> str:
    """A table row of :func:`wakeup`."""
    return (f"| {label} | {len(delays)} | {statistics.median(delays) * 1e3:.0f} "
            f"| {max(delays) * 1e3:.0f} |")  # fmt: skip


def memory_rows(label: str, figures: dict[str, Any]) -> list[str]:
    """Table rows of :func:`memory`."""
    return [f"| {label} | {when} | {u.rss:.0f} | {u.private:.0f} | {u.pss:.0f} |"
            for when, u in figures.items() if u is not None]  # fmt: skip


__all__ = ["Processes", "idle", "idle_rows", "memory", "memory_rows", "torch_floor", "wakeup",
           "wakeup_row"]  # fmt: skip
