"""Every example spec, run as a user would, ends with a verdict: the check behind the headers.

For each study spec in examples/ (or those named; the suites are timed in the README): a
fresh SQLite database, the local workers `cellsearch serve` would start (one per usable
CPU, one torch thread each), the study run to completion through real worker processes,
then the comparison report. Printed per example: the time taken, completed trials per
cell type, whether the comparison section is present, and the verdict. An example
passes when the comparison is present and every cell type has at least 3 completed
trials (search trials, or re-evaluation seeds when it re-evaluates); the header of each
spec states the time measured here.

    .venv/bin/python benchmarks/examples_check.py                    # every example
    .venv/bin/python benchmarks/examples_check.py quickstart copy-memory
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from workers import sqlite_database, time_cellsearch, workers

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def check(name: str) -> dict[str, Any]:
    """Run one example; return what the report says."""
    import optuna

    from cellsearch.search.report import ReportContext, build_report
    from cellsearch.search.study.limits import parse_spec
    from cellsearch.search.worker.cpu import cgroup_cpu_quota, usable_cpus
    from cellsearch.service.settings import Settings
    from cellsearch.service.store.db import optuna_storage

    spec = parse_spec(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))
    cpus = usable_cpus(cgroup_cpu_quota())
    with tempfile.TemporaryDirectory() as tmp, sqlite_database(Path(tmp)) as db:
        env = {"CELLSEARCH_TORCH_THREADS": "1"}
        start = time.perf_counter()
        with workers(db, cpus, Path(tmp), env) as procs:
            time_cellsearch(db, spec, procs, timeout=4 * 3600)
        minutes = (time.perf_counter() - start) / 60
        storage = optuna_storage(Settings(database_url=db.url))
        trials = optuna.load_study(study_name=spec.name, storage=storage).get_trials()
        report = build_report(trials, ReportContext.of(spec, status="completed"))
    completed = {c.cell_type: c.n_completed for c in report.cells}
    if report.reevaluation is not None:
        completed = {
            cell: max(c.val.n if c.val else 0 for c in entry.configurations)
            for cell, entry in report.reevaluation.cells.items()
        }
    return {
        "minutes": minutes,
        "workers": cpus,
        "completed": completed,
        "comparison": report.comparison is not None,
        "passes": report.comparison is not None and min(completed.values()) >= 3,
        "verdict": report.verdict,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="example names (default: all)")
    names = parser.parse_args().names or sorted(
        p.stem for p in EXAMPLES.glob("*.yaml") if "tasks" not in yaml.safe_load(p.read_text())
    )
    for name in names:
        result = check(name)
        verdict = "passes" if result["passes"] else "FAILS"
        print(f"## {name}: {verdict}, {result['minutes']:.1f} min "
              f"({60 * result['minutes']:.0f} s) with {result['workers']} worker(s)")  # fmt: skip
        print(f"completed per cell type: {result['completed']}")
        print(f"verdict: {result['verdict']}\n", flush=True)


if __name__ == "__main__":
    main()
