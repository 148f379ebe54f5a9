"""Chaos run: many workers on PostgreSQL, killed at random, a server restart, a bad upload.

Not part of the test suite (it runs for minutes and may restart the whole server). It
makes a throwaway database, submits a balanced study (3 cell types), starts ``--workers``
``cellsearch worker`` processes (heartbeat 1 s, grace period 3 s), and while the study
runs: SIGKILLs a random worker every few seconds (``--kill-every``, jittered) and starts
a new one in its place; once, when a third of the trials are done, runs
``--restart-command`` (a PostgreSQL restart; skipped when not given); and once an upload
that the service must refuse (a file that is no NPZ) while the study runs. At the end it
checks what the workers promise:

* the study completes with exactly ``n_trials`` counted trials, its ledger at that count;
* each deal (:mod:`cellsearch.search.worker.deals`) is run by exactly one counted trial,
  so the per-cell counts are those dealt, and no trial number repeats;
* every trial is accounted for: complete, pruned, failed as a model outcome, or failed
  and requeued (stale, interrupted, setup), a requeued one with at most one copy (a worker
  killed between failing a trial and enqueuing its copy leaves none: the lost deal is then
  run by a new trial); none left running or waiting;
* the refused upload stored nothing.

It prints one line of figures (kills, restart time, wall time, trials by outcome) for
the README's reliability section. Run from the repository root::

    .venv/bin/python benchmarks/chaos.py \\
        --admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres \\
        --restart-command "pg_ctlcluster 15 main restart"
"""

from __future__ import annotations

import argparse
import random
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from optuna.trial import FrozenTrial

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.service.databases import throwaway_database
from tests.service.test_cluster import (
    Cluster,
    assert_exact_budget,
    make_study,
    settings_for,
    study_status,
    trials_of,
)

from cellsearch.search.errors import DatasetError
from cellsearch.search.record import cell_of, is_counted
from cellsearch.search.study.allocation import balanced_cell
from cellsearch.service.datasets.operations import create_dataset, list_datasets
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import dispose_all, engine_for

T = TypeVar("T")

TASK = {"kind": "adding", "seq_len": 20, "n_train": 256, "n_val": 64, "n_test": 64}
CELLS = ["lstm", "gru", "rnn_tanh"]
NAME = "chaos"


def main(argv: list[str] | None = None) -> int:
    """Run the chaos; return 0 when every promise held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", required=True, help="server URL (any database)")
    parser.add_argument("--restart-command", default=None, help="restarts that server")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds, on average")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    with throwaway_database(args.admin_url, "cellsearch_chaos") as url:
        cluster = Cluster(Path(tempfile.mkdtemp(prefix="cellsearch-chaos-")))
        try:
            return _run(args, url, cluster)
        finally:
            cluster.close()


def _run(args: argparse.Namespace, url: str, cluster: Cluster) -> int:
    settings = settings_for(url)
    space = {"cell_type": CELLS, "hidden_size": {"low": 4, "high": 16}, "batch_size": 64}
    make_study(settings, NAME, args.trials, task=TASK, max_epochs=3, space=space)
    rng = random.Random(args.seed)
    workers = cluster.start(url, args.workers)
    started = time.monotonic()
    kills, restart_seconds, refused = 0, None, None
    next_kill = started + rng.uniform(0.5, 1.5) * args.kill_every
    while True:
        now = time.monotonic()
        if now - started > args.timeout:
            print(cluster.output())
            raise SystemExit(f"the study did not complete in {args.timeout:.0f} s")
        status = _quietly(lambda: study_status(settings, NAME))
        if status == "completed":
            break
        done = _quietly(lambda: sum(is_counted(t) for t in trials_of(settings, NAME))) or 0
        if refused is None and done >= args.trials // 4:
            refused = _refused_upload(settings)
        if restart_seconds is None and args.restart_command and done >= args.trials // 3:
            dispose_all()
            t0 = time.monotonic()
            subprocess.run(shlex.split(args.restart_command), check=True)
            restart_seconds = time.monotonic() - t0
        if now >= next_kill:
            victim = rng.choice([p for p in workers if p.poll() is None])
            victim.kill()
            victim.wait()
            workers = [p for p in workers if p is not victim] + cluster.start(url, 1)
            kills += 1
            next_kill = now + rng.uniform(0.5, 1.5) * args.kill_every
        time.sleep(0.2)
    wall = time.monotonic() - started
    trials = assert_exact_budget(settings, NAME, args.trials)
    _check_deals(trials, args.trials)
    outcomes = Counter(_outcome(t) for t in trials)
    assert refused is not None and refused[0], "the bad upload was not refused"
    print(
        f"{args.workers} workers, {args.trials} trials: completed in {wall:.0f} s; "
        f"{kills} workers SIGKILLed; restart {_seconds(restart_seconds)}; bad upload refused "
        f"({refused[1]}); trials by outcome {dict(sorted(outcomes.items()))}; "
        "every deal run once, per-cell counts as dealt"
    )
    cluster.stop([p for p in workers if p.poll() is None])
    return 0


def _check_deals(trials: list[FrozenTrial], n: int) -> None:
    """Each deal run by exactly one counted trial, on its own cell type; no requeued trial
    with two copies (one without any had its deal run by a new trial)."""
    counted = [t for t in trials if is_counted(t)]
    deals = sorted(t.user_attrs["deal"] for t in counted)
    if deals != list(range(n)):
        runs = Counter(deals)
        odd = {d for d, k in runs.items() if k > 1 or not 0 <= d < n}
        odd |= {d for d in range(n) if d not in runs}
        for t in trials:  # every trial of an odd deal, counted or not, for the post-mortem
            if t.user_attrs.get("deal") in odd or t.user_attrs.get("deal") is None:
                print(t.number, t.state.name, t.datetime_start, dict(sorted(t.user_attrs.items())))
    assert deals == list(range(n)), f"deals not run exactly once: {deals}"
    dealt = Counter(balanced_cell(CELLS, 7, d) for d in range(n))  # make_study's seed: 7
    assert Counter(cell_of(t) for t in counted) == dealt
    for trial in trials:  # a worker killed between failing a trial and enqueuing its copy
        if trial.state.name == "FAIL" and not is_counted(trial):  # leaves none: its deal
            copies = [c for c in trials if c.user_attrs.get("retry_of") == trial.number]
            assert len(copies) <= 1, f"requeued trial {trial.number} has {len(copies)} copies"


def _outcome(trial: FrozenTrial) -> str:
    state = trial.state.name.lower()
    kind = trial.user_attrs.get("failure_kind")
    return f"fail ({kind or 'error'})" if state == "fail" else state


def _refused_upload(settings: Settings) -> tuple[bool, str]:
    """Upload a file that is no data set; it must be refused with nothing stored."""
    engine = engine_for(settings)
    try:
        create_dataset(
            engine=engine, content=b"not a data set\x00", filename="broken.npz",
            name="broken", kind=None, max_bytes=1 << 20, limits=settings.limits(),
        )  # fmt: skip
    except DatasetError as exc:
        return list_datasets(engine=engine) == [], str(exc)[:60]
    return False, "accepted"


def _quietly(read: Callable[[], T]) -> T | None:
    """``read()``, or None while the database is away (the restart)."""
    try:
        return read()
    except Exception:
        dispose_all()
        return None


def _seconds(value: float | None) -> str:
    return "not run" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    raise SystemExit(main())
