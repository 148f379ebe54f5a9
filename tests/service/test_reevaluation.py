"""Seed re-evaluation through real workers: planned once, run once per job, own budget."""

from __future__ import annotations

import time
from collections import Counter

import optuna
import pytest
from sqlalchemy import select

from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.record import Attr, TrialRecord, is_counted, is_reevaluation
from cellsearch.search.study import reevaluation
from cellsearch.search.study.limits import SpecLimits, parse_spec
from cellsearch.search.trial import objective
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage, session_scope
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.studies.operations import get_study, trial_counts
from tests.search.test_spec import spec_data
from tests.service.test_worker import TINY, drain, make_study, make_worker

REEVALUATE = {"reevaluate": {"top_k": 1, "seeds": 2}, "budget": {"n_trials": 4, "max_epochs": 1}}


def _ledger(settings: Settings) -> tuple[int, int, int, int | None]:
    with session_scope(engine_for(settings)) as session:
        row = session.scalars(select(StudyRecord)).one()
        return row.claimed, row.n_trials, row.reevaluations, row.reevaluation_base


def test_the_best_configuration_of_each_cell_is_retrained_with_fresh_seeds(
    migrated: Settings,
) -> None:
    study = make_study(migrated, **REEVALUATE)
    worker, _ = make_worker(migrated)
    assert drain(worker) == 8  # 4 search trials, then 2 cells x 1 configuration x 2 seeds
    record = get_study(engine=engine_for(migrated), name="adding-t20")
    assert record.status == "completed"
    assert _ledger(migrated)[:3] == (8, 4, 4)
    trials = study.get_trials()
    search = [t for t in trials if not is_reevaluation(t)]
    again = [TrialRecord.of(t) for t in trials if is_reevaluation(t)]
    assert len(search) == 4 and len(again) == 4
    spec = parse_spec(spec_data(**{**TINY, **REEVALUATE}))
    best = {cell: top[0] for cell, top in reevaluation.top_configurations(spec, search).items()}
    assert sorted(r.reevaluation_job for r in again if r.reevaluation_job is not None) == [
        0,
        1,
        2,
        3,
    ]
    for r in again:
        source = best[r.cell_type or ""]
        assert r.reevaluation_of == source.number
        assert r.params == source.params  # the same configuration ...
        assert r.state == "complete" and r.epochs_run == 1
    seeds = Counter((r.reevaluation_of, r.seed) for r in again)
    assert all(n == 1 for n in seeds.values())  # ... with fresh, distinct seeds
    assert {r.seed for r in again}.isdisjoint({TrialRecord.of(t).seed for t in search})
    with engine_for(migrated).connect() as conn:
        study_id = bulk_read.find_study_id(conn, "adding-t20")
        assert study_id is not None
        best_search = bulk_read.best_trial(conn, study_id)
    assert best_search is not None and not is_reevaluation(best_search)  # runs repeat trials
    counts = trial_counts(engine=engine_for(migrated), names=["adding-t20"])["adding-t20"]
    assert (counts.finished, counts.reevaluated, counts.complete) == (4, 4, 4)
    assert sum(counts.by_cell.values()) == 4  # search trials per cell, runs apart


def test_a_study_without_reevaluate_completes_after_its_search(migrated: Settings) -> None:
    make_study(migrated, budget={"n_trials": 2, "max_epochs": 1})
    worker, _ = make_worker(migrated)
    assert drain(worker) == 2
    assert _ledger(migrated) == (2, 2, 0, None)


def test_a_stale_reevaluation_trial_is_rerun_as_the_same_job(migrated: Settings) -> None:
    study = make_study(migrated, **REEVALUATE)
    worker, ledger = make_worker(migrated)
    for _ in range(4):
        assert worker.step() is not None  # the search; the last step's settle plans 4 jobs
    assert _ledger(migrated)[:3] == (4, 4, 4)
    claim = ledger.claim()  # a worker takes re-evaluation job 0 ... and dies
    assert claim is not None and claim.reevaluation is not None
    dead = worker._reevaluation_trial(study, claim.spec, claim.reevaluation)
    assert dead is not None
    job = dead.user_attrs[Attr.REEVALUATION_JOB]
    optuna_storage(migrated).record_heartbeat(dead._trial_id)
    time.sleep(migrated.grace_period + 1.5)
    assert worker.recover_stale(force=True) == 1
    assert drain(worker) == 4  # jobs 1-3, and job 0 again (its unit was given back)
    trials = study.get_trials()
    jobs = Counter(
        t.user_attrs[Attr.REEVALUATION_JOB] for t in trials if is_reevaluation(t) and is_counted(t)
    )
    assert jobs == Counter({0: 1, 1: 1, 2: 1, 3: 1})  # each job finished exactly once
    rerun = [t for t in trials if t.user_attrs.get(Attr.RETRY_OF) == dead.number]
    assert len(rerun) == 1 and rerun[0].user_attrs[Attr.REEVALUATION_JOB] == job
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "completed"


def test_an_interrupted_reevaluation_keeps_its_job(migrated: Settings) -> None:
    study = make_study(migrated, **REEVALUATE)
    trial = study.ask()
    for key, value in {Attr.REEVALUATION_OF: 0, Attr.REEVALUATION_JOB: 3}.items():
        trial.set_user_attr(key, value)
    objective.requeue(study, trial, "interrupted")
    (copy,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert copy.user_attrs[Attr.REEVALUATION_JOB] == 3
    assert copy.user_attrs[Attr.RETRY_OF] == trial.number


def test_reevaluation_budget_beyond_the_server_limit_is_refused() -> None:
    data = spec_data(reevaluate={"top_k": 3, "seeds": 10}, budget={"n_trials": 30})
    with pytest.raises(Exception, match=r"reevaluate: .*30 \+ 90 = 120 exceeds .*max_trials=100"):
        parse_spec(data, SpecLimits(max_trials=100))
    with pytest.raises(Exception, match=r"reevaluate\.top_k: 5 exceeds the 2 trials"):
        parse_spec(spec_data(reevaluate={"top_k": 5}, budget={"n_trials": 6}))
    with pytest.raises(Exception, match="seeds"):
        parse_spec(spec_data(reevaluate={"seeds": 1}))
