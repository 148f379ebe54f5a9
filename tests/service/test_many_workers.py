"""Many workers on one PostgreSQL: connections held, waking on notifications, PgBouncer.

Real ``cellsearch worker`` processes (the ``cluster`` fixture of :mod:`.test_cluster`);
each check counts what the server sees in ``pg_stat_activity``, never a wall-clock time.
The PgBouncer test skips where the ``pgbouncer`` package is missing, except under
``CI=true`` (``.ci/run`` installs it), where that is a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from cellsearch.service.store.db import WORKER_APPLICATION, dispose_all
from cellsearch.service.workers.wakeup import CHANNEL, LISTENER_NAME
from tests.service.pgbouncer import RUN_AS, Bouncer, free_port, pgbouncer_path, running_pgbouncer
from tests.service.test_cluster import (
    STUDY_TIMEOUT,
    Cluster,
    assert_exact_budget,
    make_study,
    psycopg_conninfo,
    registered_pids,
    settings_for,
    wait_completed,
    wait_for,
)

pytestmark = pytest.mark.postgres
ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "pgbouncer" / "entrypoint.sh"


def backends(url: str, application: str) -> int:
    """Server connections to ``url``'s database with that application name."""
    with psycopg.connect(psycopg_conninfo(url), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = %s",
            (application,),
        ).fetchone()
    return int(row[0]) if row else 0


def test_an_idle_worker_holds_one_connection_and_wakes_on_submit(
    postgres_url: str, cluster: Cluster
) -> None:
    """The worker's own look for work would come only after 10 minutes (its first idle
    wait and its ceiling both say so): a study that completes within the test's deadline
    was found through the notification of its submission."""
    settings = settings_for(postgres_url)
    make_study(settings, "warm-up", 1)  # migrates, and proves the worker runs trials
    dispose_all()
    slow = {"CELLSEARCH_POLL_INTERVAL": "600", "CELLSEARCH_IDLE_POLL_MAX": "600"}
    (worker,) = cluster.start(postgres_url, 1, **slow)
    wait_completed(settings, "warm-up", cluster, [worker])

    def idle_on_one_connection() -> bool:
        cluster.assert_alive([worker])
        return backends(postgres_url, WORKER_APPLICATION) == 1

    # the heartbeat thread's second connection is closed after the trial (pool overflow)
    wait_for("the idle worker to hold one connection", idle_on_one_connection, 30)
    make_study(settings, "woken", 2)
    wait_completed(settings, "woken", cluster, [worker])
    assert_exact_budget(settings, "woken", 2)
    assert backends(postgres_url, WORKER_APPLICATION) <= 2
    assert cluster.stop([worker]) == [0]  # SIGTERM ends a 10-minute wait at once


def bouncer_or_skip(database_url: str) -> Iterator[Bouncer]:
    if pgbouncer_path() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pgbouncer is not installed: .ci/run installs it; CI must run this test")
        pytest.skip("pgbouncer is not installed (the Debian package pgbouncer)")
    with running_pgbouncer(database_url, pool_size=3) as bouncer:
        yield bouncer


@pytest.fixture
def bouncer(postgres_url: str) -> Iterator[Bouncer]:
    """A PgBouncer (3 server connections per entry) in front of the test database."""
    yield from bouncer_or_skip(postgres_url)


def test_workers_through_pgbouncer_run_exactly_the_budget(
    postgres_url: str, bouncer: Bouncer, cluster: Cluster
) -> None:
    """Five workers through PgBouncer in transaction mode, two of them listening through
    its session-mode entry: the budget is exact, the transaction entry never holds more
    than its pool's three server connections (as PgBouncer lists them: on the server, a
    session-mode connection a listener gave back has lost its name to ``DISCARD ALL``),
    at most two listen, the server sees nothing beyond the two entries' pools, and no
    worker trips on a prepared statement (psycopg's are off behind a pooler)."""
    settings = settings_for(postgres_url)
    make_study(settings, "bounced", 30)
    dispose_all()
    env = {
        "CELLSEARCH_DB_POOLER": "pgbouncer",
        "CELLSEARCH_LISTEN_URL": bouncer.listen_url,
        "CELLSEARCH_MAX_LISTENERS": "2",
    }
    workers = cluster.start(bouncer.url, 5, **env)
    pooled_entry = str(make_url(bouncer.url).database)
    samples: list[int] = []
    with psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True) as conn:

        def sample_until_completed() -> bool:
            cluster.assert_alive(workers)
            row = conn.execute(
                "SELECT count(*), count(*) FILTER (WHERE application_name = %s) "
                "FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()",
                (LISTENER_NAME,),
            ).fetchone()
            assert row is not None
            on_server, listeners = int(row[0]), int(row[1])
            assert listeners <= 2, listeners
            assert on_server <= 2 * 3, on_server  # the two entries' pools, nothing else
            entries = Counter(str(server["database"]) for server in bouncer.show("SERVERS"))
            samples.append(entries[pooled_entry])
            status = conn.execute(
                "SELECT status FROM cellsearch_studies WHERE name = 'bounced'"
            ).fetchone()
            return status is not None and status[0] == "completed"

        wait_for("study bounced to complete", sample_until_completed, STUDY_TIMEOUT, every=0.1)
    assert max(samples) <= 3, samples  # PgBouncer's pool, whatever the number of workers
    assert_exact_budget(settings, "bounced", 30)
    assert registered_pids(settings) >= {p.pid for p in workers}
    assert cluster.stop(workers) == [0] * 5
    log = cluster.output()
    assert "prepared statement" not in log, log
    assert "Traceback" not in log, log


def test_the_deployed_pgbouncer_serves_work_and_listening(postgres_url: str) -> None:
    """deploy/pgbouncer/entrypoint.sh (what compose and Kubernetes run), against the test
    server: the transaction-mode entry runs statements, the session-mode entry hears a
    notification."""
    if pgbouncer_path() is None:
        bouncer_or_skip(postgres_url).__next__()  # skips, or fails under CI=true
    url = make_url(postgres_url)
    folder = Path(tempfile.mkdtemp(prefix="cellsearch-deployed-pgbouncer-"))
    port = free_port()
    env = {
        **os.environ,
        "PGBOUNCER_RUN_DIR": str(folder),
        "PGBOUNCER_PORT": str(port),
        "PGBOUNCER_DB_HOST": url.host or "127.0.0.1",
        "PGBOUNCER_DB_PORT": str(url.port or 5432),
        "PGBOUNCER_DB_NAME": str(url.database),
        "PGBOUNCER_DB_USER": url.username or "postgres",
        "PGBOUNCER_DB_PASSWORD": "not-checked-by-the-test-server",
        "PATH": f"{os.environ.get('PATH', '')}:{Path(str(pgbouncer_path())).parent}",
    }
    # a copy in the run folder: the server's account may not read the checkout's folders
    script = folder / "entrypoint.sh"
    shutil.copyfile(ENTRYPOINT, script)
    command = ["sh", str(script)]
    if os.geteuid() == 0:
        account = pwd.getpwnam(RUN_AS)
        os.chown(folder, account.pw_uid, account.pw_gid)
        os.chown(script, account.pw_uid, account.pw_gid)
        command = ["runuser", "-u", RUN_AS, "--", "env", *[f"{k}={v}" for k, v in env.items()
                   if k.startswith("PGBOUNCER_") or k == "PATH"], *command]  # fmt: skip
    log = folder / "pgbouncer.log"
    with log.open("wb") as output:  # the process keeps its own copy of the descriptor
        proc = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        base = (f"host=127.0.0.1 port={port} user={env['PGBOUNCER_DB_USER']} "
                f"password={env['PGBOUNCER_DB_PASSWORD']}")  # fmt: skip
        try:
            work = wait_for("the deployed pgbouncer",
                            lambda: _connect(f"{base} dbname={url.database}"), 20)  # fmt: skip
        except AssertionError:
            print(log.read_text(errors="replace"))  # shown when the test fails
            raise
        with work:
            assert work.execute("SELECT 41 + 1").fetchone() == (42,)
        with psycopg.connect(f"{base} dbname={url.database}_listen", autocommit=True) as listen:
            listen.execute(f"LISTEN {CHANNEL}")
            with psycopg.connect(psycopg_conninfo(postgres_url), autocommit=True) as direct:
                direct.execute("SELECT pg_notify(%s, 'deployed')", (CHANNEL,))
            heard = [n.payload for n in listen.notifies(timeout=10, stop_after=1)]
        assert heard == ["deployed"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _connect(conninfo: str) -> psycopg.Connection[Any] | None:
    try:
        return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
    except psycopg.OperationalError:
        return None
