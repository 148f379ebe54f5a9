"""Several real worker processes on one database: budgets, crashes, signals, lost connections.

Every worker here is ``python -m cellsearch worker --device cpu`` started with fast
heartbeats (1 s), a short grace period (3 s) and one torch thread. Its output goes to a
file in the test's folder (printed when a test fails), every wait has a deadline, and the
``cluster`` fixture kills whatever a test leaves running.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import optuna
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from cellsearch.search.record import is_counted
from cellsearch.search.study.limits import parse_spec
from cellsearch.service.errors import StorageUnavailable
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import (
    WORKER_POOL,
    dispose_all,
    engine_for,
    optuna_storage,
    session_scope,
)
from cellsearch.service.store.migrate import upgrade
from cellsearch.service.store.tables import WorkerRecord
from cellsearch.service.studies.operations import create_study, get_study

T = TypeVar("T")
RUNNING = optuna.trial.TrialState.RUNNING
COMPLETE = optuna.trial.TrialState.COMPLETE
PRUNED = optuna.trial.TrialState.PRUNED
WAITING = optuna.trial.TrialState.WAITING
FAIL = optuna.trial.TrialState.FAIL

# Trials of well under a second, and trials of about a second (0.2-0.3 s per epoch).
TINY_TASK = {"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32}
LONG_TASK = {"kind": "adding", "seq_len": 40, "n_train": 768, "n_val": 64, "n_test": 64}
WORKER_ENV = {
    "CELLSEARCH_HEARTBEAT_INTERVAL": "1",
    "CELLSEARCH_GRACE_PERIOD": "3",
    "CELLSEARCH_POLL_INTERVAL": "0.1",
    "CELLSEARCH_TORCH_THREADS": "1",
}
EXIT_TIMEOUT = 20.0  # seconds a worker may take to exit after SIGTERM
STUDY_TIMEOUT = 120.0  # seconds any study here may take (they take 5-25 s)
SAMPLED = {"cell_type", "hidden_size", "learning_rate", "optimizer"}  # before training


# --- helpers ------------------------------------------------------------------------------


class Cluster:
    """Worker processes started by one test, each logging to its own file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def start(self, url: str, n: int = 1, **env: str) -> list[subprocess.Popen[bytes]]:
        """Start ``n`` workers on ``url``; ``env`` adds ``CELLSEARCH_*`` variables."""
        started = []
        for _ in range(n):
            log = (self.folder / f"worker-{len(self.procs)}.log").open("wb")
            self._logs.append(log)
            proc = subprocess.Popen(
                [sys.executable, "-m", "cellsearch", "worker", "--database-url", url,
                 "--device", "cpu"],
                env={**os.environ, **WORKER_ENV, **env}, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            self.procs.append(proc)
            started.append(proc)
        return started

    def assert_alive(self, procs: list[subprocess.Popen[bytes]]) -> None:
        """Fail at once (not at a deadline) if one of ``procs`` has exited."""
        dead = {p.pid: p.returncode for p in procs if p.poll() is not None}
        assert not dead, f"workers exited early (pid: exit code): {dead}"

    def stop(self, procs: list[subprocess.Popen[bytes]]) -> list[int]:
        """SIGTERM ``procs`` together and return their exit codes (bounded wait)."""
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        return [proc.wait(timeout=EXIT_TIMEOUT) for proc in procs]

    def close(self) -> None:
        """Kill every worker still running and close the log files."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=EXIT_TIMEOUT)
        for log in self._logs:
            log.close()

    def output(self) -> str:
        """The tail of every worker's log, for a failing test's report."""
        parts = []
        for i in range(len(self.procs)):
            text = (self.folder / f"worker-{i}.log").read_text(errors="replace")
            parts.append(f"----- worker {i} (pid {self.procs[i].pid})\n{text[-4000:]}")
        return "\n".join(parts)


def wait_for(what: str, predicate: Callable[[], T | None], timeout: float, every: float = 0.1) -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def settings_for(url: str) -> Settings:
    """The test process's settings: the same heartbeat and grace period as the workers."""
    return Settings(database_url=url, heartbeat_interval=1, grace_period=3, poll_interval=0.1)


def make_study(
    settings: Settings, name: str, n_trials: int, *, task: dict[str, Any] = TINY_TASK,
    max_epochs: int = 2, **spec_fields: Any,
) -> None:  # fmt: skip
    """Migrate the database (idempotent) and submit an adding study (no pruner unless
    ``spec_fields`` say otherwise)."""
    upgrade(settings)
    spec = parse_spec(
        {
            "name": name,
            "task": task,
            "space": {"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8},
                      "batch_size": 32},
            "budget": {"n_trials": n_trials, "max_epochs": max_epochs},
            "pruner": "none",
            "seed": 7,
            **spec_fields,
        }
    )  # fmt: skip
    create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)


def study_status(settings: Settings, name: str) -> str | None:
    """The study record's status, or ``None`` while the database is unreachable."""
    try:
        return get_study(engine=engine_for(settings), name=name).status
    except StorageUnavailable:
        return None


def wait_completed(
    settings: Settings, name: str, cluster: Cluster, alive: list[subprocess.Popen[bytes]]
) -> None:
    """Wait for the study to complete while every worker in ``alive`` keeps running, and
    for each of them to have registered: it then handles SIGTERM (a worker still starting
    when its peers finished a small study would die of the signal, not stop)."""

    def completed() -> bool:
        cluster.assert_alive(alive)
        return study_status(settings, name) == "completed" and registered_pids(settings) >= {
            p.pid for p in alive
        }

    wait_for(f"study {name} to complete", completed, STUDY_TIMEOUT, every=0.2)


def trials_of(settings: Settings, name: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial of the study, read back from Optuna's storage."""
    study = optuna.load_study(study_name=name, storage=optuna_storage(settings))
    return study.get_trials()


def assert_exact_budget(settings: Settings, name: str, n: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly ``n`` counted trials, unique numbers, nothing left over, ledger at ``n``."""
    trials = trials_of(settings, name)
    counted = [t for t in trials if is_counted(t)]
    assert len(counted) == n, [(t.number, t.state, t.user_attrs) for t in trials]
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), numbers
    assert not [t.number for t in trials if t.state in (RUNNING, WAITING)]
    record = get_study(engine=engine_for(settings), name=name)
    assert (record.status, record.claimed) == ("completed", n)
    return trials


def running_trial_of(settings: Settings, name: str, pid: int) -> optuna.trial.FrozenTrial | None:
    """The trial that the worker with ``pid`` is training now, if any.

    The worker registry names a trial the worker started (updated at most about once a
    second); Optuna says whether that trial is still running (it may have finished a
    moment ago) and whether its parameters are all sampled yet.
    """
    try:
        with session_scope(engine_for(settings)) as session:
            number = session.scalars(
                select(WorkerRecord.trial_number)
                .where(WorkerRecord.pid == pid)
                .where(WorkerRecord.study_name == name)
            ).first()
    except StorageUnavailable:
        return None
    if number is None:
        return None
    for trial in trials_of(settings, name):
        if trial.number == number and trial.state == RUNNING and trial.params.keys() >= SAMPLED:
            return trial
    return None


def registered_pids(settings: Settings) -> set[int]:
    """Process ids of the workers that have beaten into the registry."""
    with session_scope(engine_for(settings)) as session:
        return set(session.scalars(select(WorkerRecord.pid)))


def psycopg_conninfo(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg`` URL as plain libpq connection info."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- tests --------------------------------------------------------------------------------


@pytest.mark.postgres
def test_three_workers_run_exactly_the_budget(postgres_url: str, cluster: Cluster) -> None:
    settings = settings_for(postgres_url)
    make_study(settings, "budget-pg", 30)
    workers = cluster.start(postgres_url, 3)
    wait_completed(settings, "budget-pg", cluster, workers)
    trials = assert_exact_budget(settings, "budget-pg", 30)
    assert len(trials) == 30  # nothing failed or was requeued on the way
    assert cluster.stop(workers) == [0, 0, 0]


@pytest.mark.postgres
def test_minimum_completions_per_cell_hold_under_three_workers(
    postgres_url: str, cluster: Cluster
) -> None:
    """Per-cell Hyperband with min_complete_per_cell=3 and three concurrent workers: no
    trial is pruned before its cell type has three completed trials."""
    settings = settings_for(postgres_url)
    minimum = 3
    make_study(settings, "min-complete", 24, max_epochs=9, pruner="hyperband",
               pruning={"min_complete_per_cell": minimum},
               space={"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8},
                      "learning_rate": {"low": 1e-4, "high": 0.3, "log": True},
                      "batch_size": 32})  # fmt: skip
    workers = cluster.start(postgres_url, 3)
    wait_completed(settings, "min-complete", cluster, workers)
    assert cluster.stop(workers) == [0, 0, 0]
    trials = assert_exact_budget(settings, "min-complete", 24)
    pruned = [t for t in trials if t.state == PRUNED]
    assert pruned, "the test needs pruning to happen"
    for cell in ("lstm", "gru"):
        done = [t for t in trials if t.state == COMPLETE and t.params["cell_type"] == cell]
        assert len(done) >= minimum
        for trial in (t for t in pruned if t.params["cell_type"] == cell):
            ended = trial.datetime_complete
            assert ended is not None
            before = [t for t in done if t.datetime_complete and t.datetime_complete <= ended]
            assert len(before) >= minimum, (cell, trial.number, [t.number for t in before])
    # the workers really ran side by side
    spans = sorted(
        (t.datetime_start, t.datetime_complete)
        for t in trials
        if t.datetime_start is not None and t.datetime_complete is not None
    )
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


@pytest.mark.postgres
def test_sigkilled_worker_trial_is_failed_stale_and_retried(
    postgres_url: str, cluster: Cluster
) -> None:
    settings = settings_for(postgres_url)
    make_study(settings, "kill-pg", 30, task=LONG_TASK, max_epochs=6)
    workers = cluster.start(postgres_url, 3)

    def a_running_trial() -> tuple[subprocess.Popen[bytes], optuna.trial.FrozenTrial] | None:
        cluster.assert_alive(workers)
        for proc in workers:
            trial = running_trial_of(settings, "kill-pg", proc.pid)
            # with three epochs (~0.3 s) still to go, the kill lands before the trial ends
            if trial is not None and len(trial.intermediate_values) <= 3:
                return proc, trial
        return None

    victim, killed = wait_for("a running trial", a_running_trial, 60, every=0.02)
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=EXIT_TIMEOUT) == -signal.SIGKILL
    survivors = [p for p in workers if p is not victim]
    wait_completed(settings, "kill-pg", cluster, survivors)

    trials = assert_exact_budget(settings, "kill-pg", 30)
    dead = trials[killed.number]
    assert dead.state == FAIL and dead.user_attrs["failure_kind"] == "stale"
    retries = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert len(retries) == 1 and is_counted(retries[0])
    assert retries[0].params == dead.params == killed.params
    assert cluster.stop(survivors) == [0, 0]


def test_sigterm_requeues_the_trial_and_gives_the_unit_back(
    sqlite_url: str, cluster: Cluster
) -> None:
    settings = settings_for(sqlite_url)
    make_study(settings, "sigterm", 3, task=LONG_TASK, max_epochs=6)
    (worker,) = cluster.start(sqlite_url)

    def second_trial_running() -> optuna.trial.FrozenTrial | None:
        cluster.assert_alive([worker])  # the only worker: any running trial is its own
        for trial in trials_of(settings, "sigterm"):
            if trial.number >= 1 and trial.state == RUNNING and trial.params.keys() >= SAMPLED:
                return trial
        return None

    running = wait_for("the second trial to start", second_trial_running, 60, every=0.05)
    claimed_before = get_study(engine=engine_for(settings), name="sigterm").claimed
    assert claimed_before == running.number + 1
    started = time.monotonic()
    assert cluster.stop([worker]) == [0]
    assert time.monotonic() - started < EXIT_TIMEOUT

    trials = {t.number: t for t in trials_of(settings, "sigterm")}
    stopped = trials[running.number]
    assert stopped.state == FAIL and stopped.user_attrs["failure_kind"] == "interrupted"
    assert len(stopped.intermediate_values) < 6  # it stopped after an epoch, not at the end
    (requeued,) = [t for t in trials.values() if t.user_attrs.get("retry_of") == running.number]
    assert requeued.state == WAITING  # Optuna keeps a waiting trial's params as fixed_params
    assert requeued.system_attrs["fixed_params"] == stopped.params
    record = get_study(engine=engine_for(settings), name="sigterm")
    assert record.status == "running"
    assert record.claimed == claimed_before - 1 == sum(is_counted(t) for t in trials.values())

    fresh = cluster.start(sqlite_url)
    wait_completed(settings, "sigterm", cluster, fresh)
    done = assert_exact_budget(settings, "sigterm", 3)
    (retry,) = [t for t in done if t.user_attrs.get("retry_of") == running.number]
    assert is_counted(retry) and retry.number == requeued.number
    assert retry.params == stopped.params
    assert cluster.stop(fresh) == [0]


@pytest.mark.postgres
def test_workers_survive_terminated_backends(postgres_url: str, cluster: Cluster) -> None:
    import psycopg

    settings = settings_for(postgres_url)
    make_study(settings, "terminate-pg", 24, task=LONG_TASK, max_epochs=1)
    workers = cluster.start(postgres_url, 3)

    def all_registered_and_training() -> bool:
        cluster.assert_alive(workers)
        if registered_pids(settings) < {p.pid for p in workers}:
            return False  # a worker still starting up: a failed start is not the point here
        return any(running_trial_of(settings, "terminate-pg", p.pid) for p in workers)

    wait_for("every worker to start", all_registered_and_training, 60, every=0.05)
    terminated = 0
    with psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True) as conn:
        for _ in range(4):
            terminated += len(
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchall()
            )
            time.sleep(0.7)
    assert terminated >= 4  # the workers' connections really were cut
    wait_completed(settings, "terminate-pg", cluster, workers)
    assert_exact_budget(settings, "terminate-pg", 24)
    assert cluster.stop(workers) == [0, 0, 0]


def test_two_workers_on_sqlite_run_exactly_the_budget(sqlite_url: str, cluster: Cluster) -> None:
    settings = settings_for(sqlite_url)
    make_study(settings, "budget-sqlite", 12)
    workers = cluster.start(sqlite_url, 2)
    wait_completed(settings, "budget-sqlite", cluster, workers)
    assert len(assert_exact_budget(settings, "budget-sqlite", 12)) == 12
    assert cluster.stop(workers) == [0, 0]


@pytest.mark.postgres
def test_connections_stay_within_the_pool_bound(postgres_url: str, cluster: Cluster) -> None:
    """A worker holds at most two connections, whatever the API's pool settings.

    A worker process has one engine, whose pool Optuna's storage shares
    (``cellsearch.service.store.db.worker_engine``): one connection kept, one more for the
    heartbeat thread (``WORKER_POOL``). The API's ``CELLSEARCH_DB_POOL_SIZE`` and
    ``CELLSEARCH_DB_MAX_OVERFLOW``, set high here, do not apply to workers. The test process
    closes its own pools first and samples ``pg_stat_activity`` over one extra connection
    that it leaves out of the count.
    """
    import psycopg

    bound = 3 * sum(WORKER_POOL)
    settings = settings_for(postgres_url)
    make_study(settings, "pool-pg", 30)
    dispose_all()  # only the workers' connections count from here on
    workers = cluster.start(
        postgres_url, 3, CELLSEARCH_DB_POOL_SIZE="5", CELLSEARCH_DB_MAX_OVERFLOW="5"
    )
    samples: list[int] = []
    with psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True) as conn:

        def sample_until_completed() -> bool:
            cluster.assert_alive(workers)
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            samples.append(int(row[0]) if row else 0)
            status = conn.execute(
                "SELECT status FROM cellsearch_studies WHERE name = 'pool-pg'"
            ).fetchone()
            return status is not None and status[0] == "completed"

        wait_for("study pool-pg to complete", sample_until_completed, STUDY_TIMEOUT, every=0.1)
    assert len(samples) >= 5, samples
    assert max(samples) >= 3, samples  # the workers were seen (one connection each, at least)
    assert max(samples) <= bound, f"{max(samples)} connections > {bound}: {samples}"
    assert_exact_budget(settings, "pool-pg", 30)
    assert cluster.stop(workers) == [0, 0, 0]


def test_failed_release_after_requeue_does_not_strand_the_study(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost connection between ``requeue`` and ``release`` must not stall a study.

    In-process (no worker processes) so the failure lands exactly there: the last unit
    of a one-trial study is claimed by a worker that dies; the survivor fails the trial
    as stale and requeues it, but its ``release`` hits a dead connection once.
    """
    import torch

    from cellsearch.search.worker.loop import Worker
    from cellsearch.service.workers.runner import sql_backend

    settings = settings_for(sqlite_url)
    make_study(settings, "strand", 1)
    backend = sql_backend(engine_for(settings), grace_period=settings.grace_period)
    worker = Worker(optuna_storage(settings), backend, device=torch.device("cpu"))
    ledger = backend.ledger
    assert ledger.claim() is not None  # the worker that dies mid-trial
    study = optuna.load_study(study_name="strand", storage=optuna_storage(settings))
    with pytest.warns(UserWarning, match="Heartbeat"):  # Optuna's note on ask with heartbeats
        cells = optuna.distributions.CategoricalDistribution(["lstm", "gru"])
        dead = study.ask({"cell_type": cells})
    optuna_storage(settings).record_heartbeat(dead._trial_id)
    time.sleep(settings.grace_period + 1.5)

    real_release = ledger.release
    calls = iter([StorageUnavailable("database error: connection lost")])

    def release_once_failing(name: str, reclaims: int) -> None:
        error = next(calls, None)
        if error is not None:
            raise error
        real_release(name, reclaims)

    monkeypatch.setattr(ledger, "release", release_once_failing)
    with pytest.raises(StorageUnavailable):  # the run loop logs this and carries on
        worker.recover_stale(force=True)

    def study_done() -> bool:
        worker.recover_stale(force=True)
        worker.step()
        return study_status(settings, "strand") == "completed"

    wait_for("the study to complete", study_done, settings.grace_period + 2, every=0.5)
    assert len([t for t in trials_of(settings, "strand") if is_counted(t)]) == 1


@pytest.mark.postgres
def test_worker_waits_for_a_database_that_comes_up_late(
    postgres_url: str, cluster: Cluster
) -> None:
    # As when PostgreSQL and the migration step start beside the workers: the database
    # does not exist yet, then exists unmigrated, then is migrated.
    import psycopg

    settings = settings_for(postgres_url)
    admin, name = psycopg_conninfo(postgres_url), make_url(postgres_url).database
    server = make_url(admin).set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    (worker,) = cluster.start(postgres_url, CELLSEARCH_STARTUP_TIMEOUT="60")
    # each stage lasts until the worker has seen it (a loaded machine starts it slowly)
    wait_for("the worker to find no database", lambda: "unreachable" in cluster.output(), 60)
    cluster.assert_alive([worker])  # waiting, not exited
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    wait_for("the worker to find no migrations", lambda: "not migrated" in cluster.output(), 60)
    cluster.assert_alive([worker])
    upgrade(settings)
    wait_for("the worker to register", lambda: worker.pid in registered_pids(settings), 60)
    make_study(settings, "late-pg", 2)
    wait_completed(settings, "late-pg", cluster, [worker])
    assert_exact_budget(settings, "late-pg", 2)
    assert cluster.stop([worker]) == [0]
    log = cluster.output()
    assert "the database is unreachable" in log and "is not migrated" in log
    assert "retrying in" in log
