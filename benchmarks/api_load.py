"""Load test of the REST API on big studies: latency, throughput and the server's memory.

For each back end (SQLite, PostgreSQL) and each size (default 1,000, 10,000 and 100,000
finished trials) a study is built by bulk insert (``benchmarks/big_study.py``, checked
to load with ``optuna.load_study``); the real server runs as a uvicorn subprocess and is
hit by ``--concurrency`` client threads (httpx, keep-alive) with ``--requests`` requests
per endpoint: study summary, study list, first and deep trial pages, a filtered page,
report JSON (warm: from the cache) and the report page. Pages of finished trials are
cached by the server, so the same page asked again is served from memory; "new pages"
and "new filtered" ask a different offset each time (every request reads the database).
The cold report (built on every request) is measured on a second server started with
``CELLSEARCH_REPORT_CACHE_SIZE=0``, one request at a time. The server's resident memory
is read from ``/proc`` (Linux).

Usage::

    python benchmarks/api_load.py --sizes 1000                 # quick: SQLite and PostgreSQL
    python benchmarks/api_load.py                              # 1,000, 10,000 and 100,000
    python benchmarks/api_load.py --backends sqlite --out r.json
    python benchmarks/api_load.py --sizes 10000 --read-threads 1 2 40   # the read lane

``--read-threads`` compares servers whose read lane (``CELLSEARCH_API_READ_THREADS``) has
these sizes, on the endpoints it serves, taking turns (``--rounds`` servers of each size,
one after another), and prints each size's API CPU per request and latencies against the
last size's, measured in the same invocation.

PostgreSQL: ``--postgres-url`` (default ``$CELLSEARCH_TEST_POSTGRES_URL``) names a server;
a database ``cellsearch_bench_api`` is created there and dropped at the end (``--keep``
keeps it, and the SQLite file in ``--workdir``, for a rerun that skips the build).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import optuna

sys.path.insert(0, str(Path(__file__).parent))
from big_study import build_study, check_loads

V1 = "/api/v1"
PG_DATABASE = "cellsearch_bench_api"
TARGETS_10K = {  # endpoint -> p99 target in ms, at 10,000 trials
    "summary": 50, "first page": 50, "deep page": 50, "new pages": 50, "report (warm)": 500,
    "report (cold)": 3000,
}  # fmt: skip


@dataclass
class Figure:
    """The measurement of one endpoint on one study."""

    backend: str
    trials: int
    endpoint: str
    concurrency: int
    requests: int
    p50_ms: float
    p99_ms: float
    rps: float
    bytes: int
    cpu_ms: float  # the API process's CPU time per request (user + system), load-independent
    rss_mb: float
    peak_rss_mb: float


def load(
    client_url: str, path: str, *, concurrency: int, requests: int, first: int = 0
) -> tuple[list[float], int]:
    """Latencies (s) of ``requests`` GETs of ``path`` from ``concurrency`` threads, and the
    size of a response; every response must be a 200. ``{i}`` in ``path`` becomes the
    request's index, from ``first`` (a new URL for each request: nothing served from a
    cache)."""
    latencies: list[float] = []
    sizes: list[int] = []
    counter = iter(range(first, first + requests))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        with httpx.Client(base_url=client_url, timeout=600) as client:
            while True:
                with lock:
                    index = next(counter, None)
                    if index is None:
                        return
                start = time.perf_counter()
                response = client.get(path.format(i=index))
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    sizes.append(len(response.content))
                    if response.status_code != 200:
                        errors.append(f"{path}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(errors[0])
    return latencies, max(sizes)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of process ``pid`` now and at its peak, in MB (from /proc)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", float("nan")), fields.get("VmHWM", float("nan"))


@contextmanager
def server(
    database_url: str, port: int, cache_size: int, read_threads: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The API in a uvicorn subprocess (one process, as ``cellsearch serve`` runs it)."""
    env = os.environ | {
        "CELLSEARCH_DATABASE_URL": database_url,
        "CELLSEARCH_REPORT_CACHE_SIZE": str(cache_size),
    }
    if read_threads is not None:
        env["CELLSEARCH_API_READ_THREADS"] = str(read_threads)
    command = [
        sys.executable, "-m", "uvicorn", "cellsearch.service.api.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{V1}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def endpoints(name: str, n: int) -> list[tuple[str, str, int]]:
    """(label, path, share of --requests) of every endpoint measured on a study."""
    return [
        ("summary", f"{V1}/studies/{name}", 1),
        ("study list", f"{V1}/studies", 1),
        ("first page", f"{V1}/studies/{name}/trials?limit=50", 1),
        ("deep page", f"{V1}/studies/{name}/trials?limit=50&offset={max(0, n - 50)}", 1),
        ("filtered page", f"{V1}/studies/{name}/trials?limit=50&cell_type=gru&state=complete", 1),
        ("new pages", f"{V1}/studies/{name}/trials?limit=50&offset={{i}}", 1),
        (
            "new filtered",
            f"{V1}/studies/{name}/trials?limit=50&cell_type=gru&state=complete&offset={{i}}",
            1,
        ),
        ("report (warm)", f"{V1}/studies/{name}/report", 2),
        ("report page", f"{V1}/studies/{name}/report.html", 2),
    ]


def measure(args: argparse.Namespace, backend: str, url: str) -> list[Figure]:
    """Every endpoint on every study of one back end, warm server then cold reports."""
    figures: list[Figure] = []
    base = f"http://127.0.0.1:{args.port}"
    with server(url, args.port, cache_size=4) as process:
        for n in args.sizes:
            name = f"big-{n}"
            start = time.perf_counter()
            httpx.get(f"{base}{V1}/studies/{name}/report", timeout=600).raise_for_status()
            print(f"  {backend} {n}: first report {time.perf_counter() - start:.2f} s")
            for label, path, share in endpoints(name, n):
                requests = max(args.concurrency, args.requests // share)
                if n >= 100_000 and label.startswith("report"):
                    requests = max(args.concurrency, requests // 4)
                figures.append(_run(args, backend, n, label, path, requests, process.pid))
    with server(url, args.port, cache_size=0) as process:
        for n in args.sizes:
            path = f"{V1}/studies/big-{n}/report"
            figures.append(_run(args, backend, n, "report (cold)", path, args.cold, process.pid, 1))
    return figures


LANE_ENDPOINTS = ("summary", "first page", "new pages", "new filtered")


def compare_lanes(args: argparse.Namespace, backend: str, url: str) -> list[Figure]:
    """The read lane's endpoints on servers with each ``--read-threads`` size, in turns."""
    figures: list[Figure] = []
    for _ in range(args.rounds):
        for threads in args.read_threads:
            with server(url, args.port, cache_size=4, read_threads=threads) as process:
                for n in args.sizes:
                    for label, path, _share in endpoints(f"big-{n}", n):
                        if label in LANE_ENDPOINTS:
                            named = f"{label} [lane {threads}]"
                            figures.append(
                                _run(args, backend, n, named, path, args.requests, process.pid)
                            )
    return figures


def lane_ratios(figures: list[Figure], sizes: list[int]) -> list[str]:
    """Each lane size's median API CPU and latencies over the rounds, against the last
    size's."""

    def median(backend: str, n: int, named: str, field: str) -> float:
        found = [
            getattr(f, field)
            for f in figures
            if (f.backend, f.trials, f.endpoint) == (backend, n, named)
        ]
        return float(np.median(found))

    lines = []
    for backend, n in sorted({(f.backend, f.trials) for f in figures}):
        for label in LANE_ENDPOINTS:
            base = f"{label} [lane {sizes[-1]}]"
            base_cpu, base_p99 = (median(backend, n, base, k) for k in ("cpu_ms", "p99_ms"))
            for threads in sizes:
                cpu, p50, p99, rps = (
                    median(backend, n, f"{label} [lane {threads}]", k)
                    for k in ("cpu_ms", "p50_ms", "p99_ms", "rps")
                )
                lines.append(
                    f"{backend} {n} {label:12} lane {threads:>2}: CPU {cpu:5.1f} ms/req "
                    f"(x{cpu / base_cpu:.2f}), p50 {p50:5.1f}, p99 {p99:5.1f} ms "
                    f"(x{p99 / base_p99:.2f}), {rps:5.0f} req/s"
                )
    return lines


def _run(
    args: argparse.Namespace, backend: str, n: int, label: str, path: str, requests: int,
    pid: int, concurrency: int | None = None,
) -> Figure:  # fmt: skip
    concurrency = concurrency or args.concurrency
    base = f"http://127.0.0.1:{args.port}"
    # warm the connection pools (with indices the measured requests do not use)
    load(base, path, concurrency=1, requests=min(2, requests), first=10**6)
    start, cpu = time.perf_counter(), cpu_seconds(pid)
    latencies, size = load(base, path, concurrency=concurrency, requests=requests)
    wall, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu
    ms = np.array(latencies) * 1000
    figure = Figure(
        backend=backend, trials=n, endpoint=label, concurrency=concurrency, requests=requests,
        p50_ms=float(np.percentile(ms, 50)), p99_ms=float(np.percentile(ms, 99)),
        rps=requests / wall, bytes=size, cpu_ms=1000 * cpu / requests,
        rss_mb=rss_mb(pid)[0], peak_rss_mb=rss_mb(pid)[1],
    )  # fmt: skip
    print(
        f"  {backend:8} {n:>7} {label:14} p50 {figure.p50_ms:9.1f} ms  p99 {figure.p99_ms:9.1f} ms"
        f"  {figure.rps:7.1f} req/s  CPU {figure.cpu_ms:7.1f} ms/req  {size / 1e6:6.3f} MB"
        f"  RSS {figure.rss_mb:5.0f} MB"
    )
    return figure


def prepare(args: argparse.Namespace, backend: str) -> str:
    """The database URL of ``backend`` with every study of ``--sizes`` built (or reused)."""
    if backend == "sqlite":
        url = f"sqlite:///{Path(args.workdir) / 'api_load.db'}"
    else:
        url = _postgres_database(args.postgres_url)
    existing = set(optuna.get_all_study_names(url)) if _exists(url) else set()
    for n in args.sizes:
        name = f"big-{n}"
        if name in existing:
            print(f"  {backend}: reusing {name}")
            continue
        seconds = build_study(url, name, n)
        check_loads(url, name, n)
        print(f"  {backend}: built {name} in {seconds:.1f} s; optuna.load_study reads it back")
    return url


def _exists(url: str) -> bool:
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).exists()
    return True


def _postgres_database(admin_url: str) -> str:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(admin_url)
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,))
        if found.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    return base.set(database=PG_DATABASE).render_as_string(hide_password=False)


def _drop_postgres(admin_url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')


def verdicts(figures: list[Figure]) -> list[str]:
    """The targets at 10,000 trials and how each back end did, one line each."""
    lines = []
    for f in figures:
        if f.trials != 10_000:
            continue
        target = TARGETS_10K.get(f.endpoint)
        if target is not None:
            ok = "met" if f.p99_ms < target else "NOT met"
            lines.append(f"{f.backend} {f.endpoint}: p99 {f.p99_ms:.0f} ms (< {target}) {ok}")
        if f.endpoint == "report page":
            ok = "met" if f.bytes < 1_000_000 else "NOT met"
            lines.append(f"{f.backend} report page: {f.bytes / 1e6:.2f} MB (< 1 MB) {ok}")
    return lines


def growth(figures: list[Figure]) -> list[str]:
    """Server CPU per request at the largest size over the smallest, against the trials."""
    lines = []
    keys = {(f.backend, f.endpoint) for f in figures}
    for backend, endpoint in sorted(keys):
        rows = sorted(
            (f for f in figures if (f.backend, f.endpoint) == (backend, endpoint)),
            key=lambda f: f.trials,
        )
        if len(rows) >= 2 and rows[0].cpu_ms > 0:
            ratio = rows[-1].cpu_ms / rows[0].cpu_ms
            times = rows[-1].trials // rows[0].trials
            lines.append(f"{backend} {endpoint}: CPU/request x{ratio:.1f} for x{times} trials")
    return lines


def main() -> None:
    """Parse the command line, build the studies, run the load and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres-url", default=os.environ.get("CELLSEARCH_TEST_POSTGRES_URL"))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--requests", type=int, default=200, help="per endpoint (fewer for reports)"
    )
    parser.add_argument("--cold", type=int, default=5, help="cold report builds per study")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workdir", default=None, help="keeps the SQLite file (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--read-threads", type=int, nargs="+", default=None,
        help="compare servers with these read lane sizes (the last is the baseline)",
    )  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="servers of each lane size")
    args = parser.parse_args()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        args.workdir = args.workdir or tmp
        for backend in args.backends:
            if backend == "postgres" and not args.postgres_url:
                print("postgres: skipped (no --postgres-url nor CELLSEARCH_TEST_POSTGRES_URL)")
                continue
            try:
                url = prepare(args, backend)
                if args.read_threads:
                    figures += compare_lanes(args, backend, url)
                else:
                    figures += measure(args, backend, url)
            finally:
                if backend == "postgres" and not args.keep:
                    _drop_postgres(args.postgres_url)
    if args.read_threads:
        print("\n".join(["", *lane_ratios(figures, args.read_threads)]))
    else:
        print("\n".join(["", *verdicts(figures), "", *growth(figures)]))
    print(f"load average at the end: {os.getloadavg()}; CPUs: {os.cpu_count()}")
    if args.out:
        Path(args.out).write_text(json.dumps([asdict(f) for f in figures], indent=1))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
