"""A throwaway PgBouncer in front of a test database (tests and benchmarks start one each).

PgBouncer is the Debian package ``pgbouncer``; ``.ci/run`` installs it. Where it is
missing the tests that need it skip with a reason, except under ``CI=true``, where its
absence is a failure. It refuses to run as root, so as root it is started with ``-u`` as
the ``postgres`` user, from a folder that user can read.

Two entries name the one database: ``<db>`` in transaction mode (what the workers' pools
use) and ``<db>_listen`` in session mode (a session that stays on one server connection,
for ``LISTEN``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

BINARY = "pgbouncer"
RUN_AS = "postgres"  # PgBouncer will not run as root


def pgbouncer_path() -> str | None:
    """The PgBouncer executable, or None where it is not installed."""
    return shutil.which(BINARY) or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer: the URLs of its two entries for one database."""

    url: str  # transaction mode
    listen_url: str  # session mode, same database
    admin_conninfo: str  # its console (SHOW POOLS, SHOW STATS)
    log: Path

    def show(self, what: str) -> list[dict[str, object]]:
        """Rows of ``SHOW <what>`` on PgBouncer's console."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.admin_conninfo, autocommit=True) as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            return list(conn.execute(f"SHOW {what}").fetchall())  # type: ignore[arg-type]


def _config(
    db: str, host: str, port: int, user: str, own_port: int, folder: Path, pool: int
) -> str:
    server = f"host={host} port={port} dbname={db}"
    return f"""[databases]
{db} = {server} pool_mode=transaction
{db}_listen = {server} pool_mode=session

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {own_port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
admin_users = {user}
pool_mode = transaction
default_pool_size = {pool}
max_client_conn = 4000
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""


@contextlib.contextmanager
def running_pgbouncer(database_url: str, *, pool_size: int = 10) -> Iterator[Bouncer]:
    """A PgBouncer in front of ``database_url``'s database (stopped on exit).

    Args:
        database_url: A ``postgresql+psycopg`` URL of an existing database (trust auth).
        pool_size: Server connections per entry (``default_pool_size``).
    """
    binary = pgbouncer_path()
    if binary is None:
        raise FileNotFoundError("pgbouncer is not installed")
    url = make_url(database_url)
    user, db = url.username or "postgres", url.database or "postgres"
    folder = Path(tempfile.mkdtemp(prefix="cellsearch-pgbouncer-"))
    own_port = free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(_config(db, url.host or "127.0.0.1", url.port or 5432, user, own_port,
                              folder, pool_size))  # fmt: skip
    (folder / "users.txt").write_text(f'"{user}" ""\n')
    command = [binary, str(config)]
    if os.geteuid() == 0:
        account = pwd.getpwnam(RUN_AS)
        folder.chmod(0o755)
        for path in (folder, *folder.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        command = [binary, "-u", RUN_AS, str(config)]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    bouncer = Bouncer(
        url=url.set(host="127.0.0.1", port=own_port).render_as_string(hide_password=False),
        listen_url=url.set(
            host="127.0.0.1", port=own_port, database=f"{db}_listen"
        ).render_as_string(hide_password=False),
        admin_conninfo=f"host=127.0.0.1 port={own_port} dbname=pgbouncer user={user}",
        log=folder / "pgbouncer.log",
    )
    try:
        _wait_listening(own_port, proc, bouncer.log)
        yield bouncer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {text[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("pgbouncer did not start listening within 20 s")
