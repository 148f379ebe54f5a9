"""Balanced studies end with exactly their per-cell counts, whatever fails and whenever.

Faults are injected at each step of a worker (task preparation, sampling, building the
model, the first epoch, recording the outcome), and workers die at the three moments
that matter (after a claim, after making a trial, mid-trial); every study must end with
each deal run by exactly one counted trial.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from sqlalchemy import text

from cellsearch.search import record
from cellsearch.search.study.allocation import balanced_cell
from cellsearch.search.trial import objective
from cellsearch.search.worker import deals
from cellsearch.search.worker.deals import free_deal, held_deals, record_deal, take_search_trial
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.studies.operations import change_status, get_study
from tests.service.test_worker import counted, drain, make_study, make_worker

CELLS = ["lstm", "gru", "rnn_tanh"]
BALANCED = {"space": {"cell_type": CELLS, "hidden_size": 4}, "sampler": "random"}


def fault(fn: Callable[..., Any], error: Exception, at: int = 1) -> Callable[..., Any]:
    """``fn``, except that its call number ``at`` raises ``error``."""
    calls = []

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == at:
            raise error
        return fn(*args, **kwargs)

    return wrapped


def dealt(n: int, seed: int = 0) -> Counter[str]:
    return Counter(balanced_cell(CELLS, seed, i) for i in range(n))


def assert_exactly_dealt(study: optuna.Study, n: int) -> None:
    trials = counted(study)
    assert sorted(t.user_attrs[record.Attr.DEAL] for t in trials) == list(range(n))
    for trial in trials:  # every deal ran its own cell type (or failed before sampling it)
        cell = balanced_cell(CELLS, 0, trial.user_attrs["deal"])
        assert record.cell_of(trial) == trial.params.get("cell_type", cell) == cell
    assert Counter(record.cell_of(t) for t in trials) == dealt(n)


def test_faults_at_every_step_keep_the_per_cell_counts(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated, budget={"n_trials": 9, "max_epochs": 1}, **BALANCED)
    worker, ledger = make_worker(migrated)
    # spaced so that no trial's chain fails before training three times in a row
    monkeypatch.setattr(worker, "_task_data", fault(worker._task_data, OSError("truncated")))
    monkeypatch.setattr(objective, "suggest_config", fault(objective.suggest_config, KeyError(), 3))
    monkeypatch.setattr(objective, "record_attrs", fault(objective.record_attrs, TypeError(), 4))
    monkeypatch.setattr(objective, "SequenceModel", fault(objective.SequenceModel, ValueError(), 5))
    monkeypatch.setattr(objective, "train", fault(objective.train, RuntimeError("in epoch 1"), 7))

    # three workers die: after a claim, after making a trial, and mid-trial with its deal
    assert ledger.claim() is not None
    assert ledger.claim() is not None
    study.ask()  # a trial without a deal or parameters, never heard of again
    claim = ledger.claim()
    assert claim is not None
    storage = optuna_storage(migrated)
    taken = take_search_trial(study, storage, claim.spec, claim.index, grace_period=3)
    record_deal(study, claim.spec, taken, claim.index, grace_period=3)

    drain(worker)
    time.sleep(migrated.grace_period + 1.5)
    worker.recover_stale(force=True)
    drain(worker)
    time.sleep(migrated.grace_period + 1.5)  # the lost unit is reclaimed once none runs
    worker.recover_stale(force=True)
    drain(worker)

    assert get_study(engine=engine_for(migrated), name=study.study_name).status == "completed"
    assert_exactly_dealt(study, 9)
    kinds = Counter(
        t.user_attrs.get("failure_kind") for t in study.trials if t.state.name == "FAIL"
    )
    assert kinds == {"setup": 4, "stale": 2, "error": 1}
    (error,) = [t for t in counted(study) if t.state.name == "FAIL"]
    assert "in epoch 1" in error.user_attrs["failure_reason"]
    setups = [t for t in study.trials if t.user_attrs.get("failure_kind") == "setup"]
    for failed in setups:  # each requeued at once, its copy on the same deal
        (copy,) = [t for t in study.trials if t.user_attrs.get("retry_of") == failed.number]
        assert copy.user_attrs["deal"] == failed.user_attrs["deal"]


def test_a_fault_that_never_heals_becomes_a_failed_draw(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated, budget={"n_trials": 2, "max_epochs": 1}, **BALANCED)
    worker, _ = make_worker(migrated)

    def broken(_spec: Any) -> Any:
        raise OSError("the data set's file is unreadable")

    monkeypatch.setattr(worker, "_task_data", broken)
    outcomes = []
    while (outcome := worker.step()) is not None:
        outcomes.append(outcome.outcome)
    assert outcomes == ["setup", "setup", "error"] * 2
    assert get_study(engine=engine_for(migrated), name=study.study_name).status == "completed"
    failed = counted(study)
    assert [t.user_attrs["failure_kind"] for t in failed] == ["error", "error"]
    assert all("failed before training 3 times" in t.user_attrs["failure_reason"] for t in failed)
    assert_exactly_dealt(study, 2)


def test_a_requeued_copy_keeps_its_deal_after_a_pause(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated, budget={"n_trials": 6, "max_epochs": 2}, **BALANCED)
    worker, _ = make_worker(migrated)
    engine = engine_for(migrated)

    def pause_mid_trial(*args: Any, **kwargs: Any) -> Any:
        change_status(engine=engine, name=study.study_name, action="pause")
        return train(*args, **kwargs)

    train = objective.train
    monkeypatch.setattr(objective, "train", pause_mid_trial)
    assert worker.step() is not None  # interrupted after its first epoch, requeued
    assert worker.step() is None  # paused
    monkeypatch.setattr(objective, "train", train)
    change_status(engine=engine, name=study.study_name, action="resume")
    reads = []  # no claim is fresh now: each new trial takes the ledger counter's deal,
    monkeypatch.setattr(deals, "held_deals", lambda *a, **k: reads.append(a))  # no read
    drain(worker)
    assert reads == []
    (interrupted,) = [t for t in study.trials if t.user_attrs.get("failure_kind")]
    assert interrupted.user_attrs["failure_kind"] == "interrupted"
    assert_exactly_dealt(study, 6)
    assert dealt_count(migrated, study.study_name) == 6


def dealt_count(settings: Settings, name: str) -> int | None:
    with engine_for(settings).connect() as conn:
        query = text("SELECT dealt FROM cellsearch_studies WHERE name = :name")
        return conn.scalar(query, {"name": name})


def test_the_counter_hands_out_each_deal_once_then_none(migrated: Settings) -> None:
    """Fresh claims hand out their indices; the counter goes on from there, each deal to
    one caller however many ask at once, and none past the budget or during the
    re-evaluation."""
    study = make_study(migrated, budget={"n_trials": 40, "max_epochs": 1}, **BALANCED)
    name = study.study_name
    _, ledger = make_worker(migrated)
    assert [ledger.claim().index for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    assert dealt_count(migrated, name) == 3
    ledger.release(name, reclaims=0)  # a requeue: no claim is fresh from now on
    claim = ledger.claim()
    assert claim is not None and not claim.fresh and dealt_count(migrated, name) == 3
    handed: list[int | None] = []
    threads = [
        threading.Thread(target=lambda: handed.extend(ledger.new_deal(name) for _ in range(20)))
        for _ in range(4)
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(d for d in handed if d is not None) == list(range(3, 40))
    assert handed.count(None) == 80 - 37 and ledger.new_deal(name) is None
    assert ledger.new_deal("no such study") is None


def test_a_study_without_a_counter_picks_deals_by_reading_its_trials(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A study made before the counter was kept (NULL): a claim that is not fresh picks
    its deal from the trials, as before; a fresh one starts the counter."""
    study = make_study(migrated, budget={"n_trials": 6, "max_epochs": 1}, **BALANCED)
    name = study.study_name
    worker, ledger = make_worker(migrated)
    with engine_for(migrated).begin() as conn:
        conn.execute(text("UPDATE cellsearch_studies SET dealt = NULL"))
    assert ledger.new_deal(name) is None
    assert worker.step() is not None and dealt_count(migrated, name) == 1  # fresh: counts
    with engine_for(migrated).begin() as conn:  # given back before the counter was kept
        conn.execute(text("UPDATE cellsearch_studies SET dealt = NULL, issued = issued + 1"))
    reads: list[int] = []
    held = deals.held_deals

    def reading(*args: Any, **kwargs: Any) -> dict[int, list[int]]:
        reads.append(1)
        return held(*args, **kwargs)

    monkeypatch.setattr(deals, "held_deals", reading)
    drain(worker)
    assert len(reads) >= 5 and dealt_count(migrated, name) is None
    assert_exactly_dealt(study, 6)


def test_free_deal_takes_the_claims_index_or_the_smallest_free() -> None:
    assert free_deal({0: [0], 1: [1]}, 2) == 2
    assert free_deal({0: [0], 2: [1], 3: [2]}, 3) == 1
    assert free_deal({0: [0], 1: [1]}, 1, exclude=[2]) == 3


def test_a_failed_trial_holds_its_deal_only_until_its_copy_exists() -> None:
    done = _frozen(0, "COMPLETE", {"deal": 0})
    diverged = _frozen(1, "FAIL", {"deal": 1, "failure_kind": "diverged"})
    stale = _frozen(2, "FAIL", {"deal": 2, "failure_kind": "stale"})
    assert held_deals([done, diverged, stale], grace_period=60) == {0: [0], 1: [1], 2: [2]}
    copy = _frozen(3, "WAITING", {"deal": 2, "retry_of": 2})
    assert held_deals([done, diverged, stale, copy], grace_period=60) == {
        0: [0],
        1: [1],
        2: [3],
    }
    assert held_deals([stale], grace_period=0) == {}  # no copy came within the grace period


def _frozen(number: int, state: str, attrs: dict[str, Any]) -> optuna.trial.FrozenTrial:
    from datetime import datetime

    finished = state not in ("RUNNING", "WAITING")
    return optuna.trial.FrozenTrial(
        number=number,
        state=optuna.trial.TrialState[state],
        value=1.0 if state == "COMPLETE" else None,
        datetime_start=datetime.now(),
        datetime_complete=datetime.now() if finished else None,
        params={},
        distributions={},
        user_attrs=attrs,
        system_attrs={},
        intermediate_values={},
        trial_id=number,
    )


def test_two_repairs_at_once_never_keep_one_deal(migrated: Settings) -> None:
    """The race the chaos run found: two workers repair a lost deal at once, and the
    lower-numbered trial records its deal only after the higher one has checked. Each
    must end on a deal of its own."""
    study = make_study(migrated, budget={"n_trials": 4, "max_epochs": 1}, **BALANCED)
    _, ledger = make_worker(migrated)
    storage = optuna_storage(migrated)
    claim = ledger.claim()
    assert claim is not None and claim.index == 0
    first = take_search_trial(study, storage, claim.spec, 0, grace_period=3, fresh=True)
    record_deal(study, claim.spec, first, 0, grace_period=3)  # deal 0, running: held
    # two takes of an index already held, before either records: both see deal 1 free
    low = take_search_trial(study, storage, claim.spec, 0, grace_period=3)
    high = take_search_trial(study, storage, claim.spec, 0, grace_period=3)
    assert low.deal == high.deal == 1 and low.trial.number < high.trial.number

    def lock() -> Any:
        return ledger.deal_lock(study.study_name)

    record_deal(study, claim.spec, high, 0, grace_period=3, lock=lock)  # records, checks
    record_deal(study, claim.spec, low, 0, grace_period=3, lock=lock)  # only then
    deals = {t.number: t.user_attrs.get(record.Attr.DEAL) for t in study.get_trials()}
    assert deals[high.trial.number] == 1 and deals[low.trial.number] == 2
    cells = {t.number: record.cell_of(t) for t in study.get_trials()}
    assert cells[low.trial.number] == balanced_cell(CELLS, 0, 2)  # armed for its new deal


def test_the_deal_lock_lets_one_worker_in_at_a_time(migrated: Settings) -> None:
    """A second holder waits until the first lets go (advisory lock on PostgreSQL, a file
    lock on SQLite); on PostgreSQL another study's lock is free meanwhile (SQLite, one
    writer anyway, has one lock for all its studies)."""
    _, ledger = make_worker(migrated)
    _, other = make_worker(migrated)  # another worker's ledger (its own connections)
    order: list[str] = []
    held = threading.Event()

    def second() -> None:
        held.wait(10)
        with other.deal_lock("s"):
            order.append("second in")

    thread = threading.Thread(target=second)
    thread.start()
    with ledger.deal_lock("s"):
        held.set()
        if migrated.database_url.startswith("postgresql"):
            with other.deal_lock("another study"):
                order.append("another study in")
        time.sleep(0.5)  # the second waits meanwhile
        order.append("first out")
    thread.join(10)
    expected = ["first out", "second in"]
    if migrated.database_url.startswith("postgresql"):
        expected.insert(0, "another study in")
    assert order == expected


def test_a_worker_waiting_for_the_deal_lock_holds_no_server_connection(
    migrated: Settings,
) -> None:
    """Behind a pooler with fewer server connections than workers, waiters blocked inside
    the lock would hold every connection while the holder waits for one."""
    if not migrated.database_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's (SQLite's is a file lock)")
    _, ledger = make_worker(migrated)
    _, other = make_worker(migrated)
    done = threading.Event()

    def second() -> None:
        with other.deal_lock("s"):
            done.set()

    blocked = """SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                 AND wait_event_type = 'Lock'"""
    with ledger.deal_lock("s"):
        thread = threading.Thread(target=second)
        thread.start()
        seen = []
        for _ in range(10):
            time.sleep(0.05)
            with engine_for(migrated).connect() as conn:
                seen.append(conn.scalar(text(blocked)))
        assert not done.is_set()  # still waiting
    thread.join(10)
    assert done.is_set()
    assert seen == [0] * 10  # no backend ever sat blocked in the lock


def test_a_fresh_take_is_made_with_its_deal(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh claim's new trial carries its deal, cell type and kind of draw from the
    transaction that makes it: no trial of the study is ever seen without them, and no
    separate write records them."""
    study = make_study(migrated, budget={"n_trials": 4, "max_epochs": 1}, **BALANCED)
    _, ledger = make_worker(migrated)
    storage = optuna_storage(migrated)
    claim = ledger.claim()
    assert claim is not None
    writes: list[dict[str, Any]] = []
    monkeypatch.setattr(deals, "record_attrs", lambda trial, attrs: writes.append(attrs))
    taken = take_search_trial(study, storage, claim.spec, 2, grace_period=3, fresh=True)
    assert taken.recorded and taken.deal == 2
    assert record_deal(study, claim.spec, taken, 2, grace_period=3) is taken.trial
    assert writes == []  # nothing written after the trial was made
    stored = optuna.load_study(study_name=study.study_name, storage=migrated.database_url)
    (trial,) = stored.get_trials()
    assert trial.user_attrs == deals.deal_attrs(study, claim.spec, 2)
    assert trial.user_attrs[record.Attr.DEAL] == 2
    assert record.cell_of(trial) == balanced_cell(CELLS, 0, 2)
