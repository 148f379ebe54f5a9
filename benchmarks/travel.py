"""A study travels: export and import time and archive size, for the 10,000-trial study.

A finished study of ``--trials`` trials (default 10,000, as ``benchmarks/big_study.py``
builds it: 5 cell types, 20 epochs, every attribute a worker writes) is made in a
database of each back end; it is exported (the service's own operation,
:func:`cellsearch.service.travel.export.export_study`: one transaction's read, the
report built, the Optuna SQLite file written, everything zipped with its checksums) and
the SQLite one's archive is imported into a fresh database of each back end
(:func:`cellsearch.service.travel.importer.import_study`: unpacked and checked whole,
then one transaction). Each import is then checked: its report, built from the imported
trials, must equal the ``report.json`` the archive carries, byte for byte. The figures
are wall-clock seconds of one run each (``--repeat`` takes the best of several).

Usage::

    python benchmarks/travel.py                          # SQLite and PostgreSQL
    python benchmarks/travel.py --backends sqlite --trials 1000
    python benchmarks/travel.py --out travel.json

PostgreSQL: ``--postgres-url`` (default ``$CELLSEARCH_TEST_POSTGRES_URL``) names a server on
which throwaway databases are made and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).parent))
from tests.service.databases import throwaway_database

from big_study import build_study
from cellsearch.service.artifacts.operations import store_for
from cellsearch.service.reports.study import build_study_report, report_state
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import dispose_all, engine_for
from cellsearch.service.store.migrate import upgrade
from cellsearch.service.travel import layout
from cellsearch.service.travel.export import export_study
from cellsearch.service.travel.importer import import_study

NAME = "big"


@dataclass
class Figure:
    """One measured step."""

    step: str  # export | import
    backend: str
    trials: int
    seconds: float
    archive_bytes: int
    note: str = ""


@contextlib.contextmanager
def database(backend: str, folder: Path, tag: str, admin: str | None) -> Iterator[Settings]:
    """A fresh, migrated database of ``backend`` (and its own artifact store)."""
    if backend == "sqlite":
        url = f"sqlite:///{folder}/{tag}.db"
        yield _migrated(url, folder / f"{tag}-artifacts")
        return
    assert admin is not None
    with throwaway_database(admin, f"cellsearch_travel_{tag}") as url:
        yield _migrated(url, folder / f"{tag}-artifacts")


def _migrated(url: str, artifacts: Path) -> Settings:
    settings = Settings(database_url=url, artifact_dir=str(artifacts))
    upgrade(settings)
    return settings


def best_of(repeat: int, run: Callable[[], None]) -> float:
    """The fewest seconds ``run()`` took in ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def export_to(settings: Settings, path: Path) -> None:
    with path.open("wb") as target:
        export_study(
            engine=engine_for(settings), store=store_for(settings), name=NAME, target=target
        )


def import_from(settings: Settings, path: Path) -> None:
    with path.open("rb") as source:
        import_study(
            engine=engine_for(settings), store=store_for(settings), settings=settings, source=source
        )


def check_report(settings: Settings, archive: Path) -> None:
    """The imported study's report equals the one the archive carries."""
    with zipfile.ZipFile(archive) as zf:
        carried = zf.read(layout.REPORT)
    state = report_state(engine=engine_for(settings), name=NAME)
    built = build_study_report(engine_for(settings), state).body
    assert built == carried, "the imported study's report differs from the exported one"


def run(args: argparse.Namespace, folder: Path) -> list[Figure]:
    figures: list[Figure] = []
    archives: dict[str, Path] = {}
    for backend in args.backends:
        with database(backend, folder, f"from_{backend}", args.postgres_url) as source:
            build_study(source.database_url, NAME, args.trials)
            path = folder / f"{backend}{layout.EXTENSION}"
            seconds = best_of(args.repeat, functools.partial(export_to, source, path))
            archives[backend] = path
            figures.append(Figure("export", backend, args.trials, seconds, path.stat().st_size,
                                  _parts(path)))  # fmt: skip
            print(_line(figures[-1]), flush=True)
        dispose_all()
    archive = archives[args.backends[0]]
    for backend in args.backends:
        times = []
        for attempt in range(args.repeat):
            with database(backend, folder, f"to_{backend}_{attempt}", args.postgres_url) as target:
                started = time.perf_counter()
                import_from(target, archive)
                times.append(time.perf_counter() - started)
                if attempt == 0:
                    check_report(target, archive)
            dispose_all()
        note = f"archive from {args.backends[0]}; report equal"
        figures.append(Figure("import", backend, args.trials, min(times),
                              archive.stat().st_size, note))  # fmt: skip
        print(_line(figures[-1]), flush=True)
    return figures


def _parts(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        sizes = {i.filename: (i.file_size, i.compress_size) for i in zf.infolist()}
    optuna_file, report = sizes[layout.OPTUNA], sizes[layout.REPORT]
    return (
        f"optuna.sqlite3 {optuna_file[0] / 1e6:.1f} MB (zipped {optuna_file[1] / 1e6:.1f}), "
        f"report.json {report[0] / 1e6:.1f} MB (zipped {report[1] / 1e6:.2f})"
    )


def _line(figure: Figure) -> str:
    return (
        f"{figure.step:6} {figure.backend:8} {figure.trials:>6} trials  "
        f"{figure.seconds:6.1f} s  archive {figure.archive_bytes / 1e6:5.1f} MB  {figure.note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--postgres-url", default=os.environ.get("CELLSEARCH_TEST_POSTGRES_URL"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if "postgres" in args.backends and not args.postgres_url:
        print("postgres: skipped (no --postgres-url nor CELLSEARCH_TEST_POSTGRES_URL)")
        args.backends = [b for b in args.backends if b != "postgres"]
    with tempfile.TemporaryDirectory(prefix="cellsearch-travel-") as folder:
        figures = run(args, Path(folder))
    if args.out:
        args.out.write_text(json.dumps([asdict(f) for f in figures], indent=2))


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
