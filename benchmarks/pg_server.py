"""A PostgreSQL server of the benchmark's own: a fresh cluster in a temporary folder.

Benchmarks that change server settings (``max_connections``) or read
``pg_stat_statements`` (which must be preloaded) must not touch a shared server: this
starts one with ``initdb`` and ``pg_ctl`` on a free port, trust authentication on
127.0.0.1 only, and removes it on exit. As root it runs them as the ``postgres`` user,
which PostgreSQL requires.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

RUN_AS = "postgres"


def _bin(name: str) -> str:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    if not found:
        raise FileNotFoundError(f"{name} not found (PostgreSQL server binaries)")
    return found if isinstance(found, str) else found[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", RUN_AS, "--", *command]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def own_server(
    *, max_connections: int = 100, settings: dict[str, str] | None = None
) -> Iterator[str]:
    """A running server; yields the ``postgresql+psycopg`` URL of its ``postgres`` database.

    Args:
        max_connections: The server's ``max_connections``.
        settings: More server settings (``-c name=value``).
    """
    folder = Path(tempfile.mkdtemp(prefix="cellsearch-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        account = pwd.getpwnam(RUN_AS)
        os.chown(folder, account.pw_uid, account.pw_gid)
    port = _free_port()
    options = {
        "max_connections": str(max_connections),
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "top",  # what clients send: one per round trip
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(folder),
        "port": str(port),
        **(settings or {}),
    }
    flags = " ".join(f"-c {k}={v}" for k, v in options.items())
    try:
        _run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        _run([_bin("pg_ctl"), "-D", str(data), "-o", flags, "-l", str(folder / "log"), "-w",
              "start"])  # fmt: skip
        url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        _create_extension(port)
        yield url
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, FileNotFoundError):
            _run([_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def _create_extension(port: int) -> None:
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
                                   autocommit=True)  # fmt: skip
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:  # in template1 too, so that every database made afterwards has the view
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=template1",
                         autocommit=True) as template:  # fmt: skip
        template.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
