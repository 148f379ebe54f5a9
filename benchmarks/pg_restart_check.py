"""Chaos check: restart the PostgreSQL server under two working workers.

Not a timing benchmark and not part of the test suite, because it restarts the whole
server (every other client of it loses its connections). It creates a throwaway
database, starts two ``cellsearch worker`` processes (heartbeat 1 s, grace period 3 s)
on a 40-trial study of short trials, runs ``--restart-command`` once 8 trials are done,
and then checks that the study completes with exactly 40 counted trials, that no trial
failed (the running ones rode out the restart instead of going stale), and that both
workers exit 0 on SIGTERM. The database is dropped at the end.

Run from the repository root, against a server you may restart::

    .venv/bin/python benchmarks/pg_restart_check.py \\
        --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --restart-command "pg_ctlcluster 15 main restart"
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.service.databases import throwaway_database
from tests.service.test_cluster import (
    LONG_TASK,
    Cluster,
    assert_exact_budget,
    make_study,
    settings_for,
    study_status,
    trials_of,
    wait_for,
)


def main(argv: list[str] | None = None) -> int:
    """Run the check; return 0 when every condition held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", required=True, help="server URL (any database)")
    parser.add_argument("--restart-command", required=True, help="restarts that server")
    args = parser.parse_args(argv)
    with throwaway_database(args.admin_url, "cellsearch_restart") as url:
        return _check(url, args.restart_command)


def _check(url: str, restart_command: str) -> int:
    from cellsearch.search.record import is_counted
    from cellsearch.service.store.db import dispose_all
    from cellsearch.service.store.migrate import upgrade

    settings = settings_for(url)
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="cellsearch-restart-")))
    try:
        upgrade(settings)
        make_study(settings, "restart", 40, task=LONG_TASK, max_epochs=2)
        workers = cluster.start(url, 2)

        def eight_done() -> bool:
            cluster.assert_alive(workers)
            return sum(is_counted(t) for t in trials_of(settings, "restart")) >= 8

        wait_for("8 finished trials", eight_done, 120)
        dispose_all()
        started = time.monotonic()
        subprocess.run(shlex.split(restart_command), check=True)
        print(f"restart took {time.monotonic() - started:.1f} s")

        def completed() -> bool:
            cluster.assert_alive(workers)
            try:
                return study_status(settings, "restart") == "completed"
            except Exception:  # the test process's own connections were cut too
                dispose_all()
                return False

        wait_for("the study to complete", completed, 300, every=0.5)
        assert_exact_budget(settings, "restart", 40)
        failed = [t.user_attrs.get("failure_kind") for t in trials_of(settings, "restart")
                  if t.state.name == "FAIL"]  # fmt: skip
        print(f"exactly 40 counted trials; failed trials: {failed or 'none'}")
        codes = cluster.stop(workers)
        print(f"worker exit codes on SIGTERM: {codes}")
        return 0 if not failed and codes == [0, 0] else 1
    finally:
        cluster.close()
        print(cluster.output())


if __name__ == "__main__":
    raise SystemExit(main())
