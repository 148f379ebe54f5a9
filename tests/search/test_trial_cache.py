"""The adapter's trial cache answers every read as Optuna's own storage does, re-reading less.

A study is driven through random steps by two workers (one on the adapter's cache, one on
Optuna's own storage): trials asked, with parameters, reports and attributes; finished
in every state; enqueued and taken. After each step a read in random states through the
cache is compared with Optuna's plain read of the database, on both databases.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import event

from cellsearch.search.optuna_adapter import (
    AdapterStorage,
    TrialCache,
    load_study,
    settled_trials,
    take_waiting_trial,
    unfinished_trial_ids,
)
from cellsearch.search.optuna_adapter._storage import AdapterStorage as _Adapter
from tests.search.test_optuna_adapter_reads import _decorate, _suggest, assert_same_trials

READS: list[tuple[TrialState, ...] | None] = [
    None,
    (TrialState.COMPLETE,),
    (TrialState.WAITING,),
    (TrialState.COMPLETE, TrialState.PRUNED),
    (TrialState.FAIL,),
    (TrialState.PRUNED, TrialState.WAITING),
    (TrialState.RUNNING,),
    (TrialState.RUNNING, TrialState.WAITING),
]


def _studies(url: str, name: str) -> tuple[optuna.Study, optuna.Study, optuna.storages.RDBStorage]:
    """The study on the adapter's cache, the same study on Optuna's own storage (another
    worker), and Optuna's storage to read the truth from (no cache)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=0)
    optuna.create_study(storage=url, study_name=name)
    ours = load_study(name, AdapterStorage(url))
    ours.sampler = sampler
    other = optuna.load_study(study_name=name, storage=url, sampler=sampler)
    return ours, other, optuna.storages.RDBStorage(url)


def _read(study: optuna.Study, states: Any) -> list[FrozenTrial]:
    return study._storage.get_all_trials(study._study_id, deepcopy=False, states=states)


@pytest.mark.filterwarnings("ignore:The reported value is ignored")  # a step reported again
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_read_through_the_cache_is_what_optuna_reads(db_url: str, seed: int) -> None:
    ours, other, truth = _studies(db_url, f"walk{seed}")
    assert isinstance(ours._storage, TrialCache)
    rng = np.random.default_rng(seed)
    running: list[tuple[optuna.Study, optuna.Trial]] = []
    ends = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    paths = {"narrow": 0, "optunas": 0, "settled": 0, "running": 0}
    for _ in range(70):
        step = rng.choice(["ask", "ask", "report", "end", "end", "enqueue", "take"])
        if step == "ask":
            study = (ours, other)[int(rng.integers(2))]
            trial = study.ask()
            _suggest(trial, rng)
            running.append((study, trial))
        elif step == "report" and running:
            study, trial = running[int(rng.integers(len(running)))]
            _decorate(study, trial, rng)
        elif step == "end" and running:
            study, trial = running.pop(int(rng.integers(len(running))))
            state = ends[int(rng.integers(3))]
            study.tell(trial, float(rng.normal()) if state == TrialState.COMPLETE else None,
                       state=state)  # fmt: skip
        elif step == "enqueue":
            other.enqueue_trial({"cell_type": "gru"})
        elif step == "take":
            taken = take_waiting_trial(ours)
            if taken is not None:
                _suggest(taken, rng)
                running.append((ours, taken))
        states = READS[int(rng.integers(len(READS)))]
        paths["optunas" if states is None or TrialState.RUNNING in states else "narrow"] += 1
        assert_same_trials(_read(ours, states), truth.get_all_trials(ours._study_id, states=states))
        if rng.random() < 0.5:  # the settle's question: every trial, unless one runs
            paths["settled" if _check_settled(ours, truth) else "running"] += 1
    while running:  # the last ones end: the study settles
        study, trial = running.pop(int(rng.integers(len(running))))
        study.tell(trial, 1.0)
        paths["settled" if _check_settled(ours, truth) else "running"] += 1
    settled = paths.pop("settled")
    assert settled > 0 and min(paths.values()) > 5  # each kind checked (most many times)
    for states in READS:
        assert_same_trials(_read(ours, states), truth.get_all_trials(ours._study_id, states=states))


def _check_settled(ours: optuna.Study, truth: optuna.storages.RDBStorage) -> bool:
    """settled_trials is None while a trial runs, else Optuna's plain read of all."""
    every = truth.get_all_trials(ours._study_id)
    settled = settled_trials(ours)
    if any(t.state == TrialState.RUNNING for t in every):
        assert settled is None
        return False
    assert settled is not None
    assert_same_trials(settled, every)
    return True


def test_a_trial_read_waiting_then_taken_elsewhere_is_running(db_url: str) -> None:
    """The settle's read reads no running trial: a trial this cache saw waiting and another
    worker took since is known running by its id alone."""
    ours, other, truth = _studies(db_url, "settle")
    other.tell(other.ask(), 1.0)
    other.enqueue_trial({"cell_type": "gru"})
    assert _check_settled(ours, truth)  # a waiting trial runs not: settled
    taken = take_waiting_trial(other)
    assert taken is not None and not _check_settled(ours, truth)
    other.tell(taken, 2.0)
    fresh = other.ask()  # new to this cache, running
    assert not _check_settled(ours, truth)
    other.tell(fresh, state=TrialState.PRUNED)
    assert _check_settled(ours, truth)
    plain = optuna.load_study(study_name="settle", storage=optuna.storages.RDBStorage(db_url))
    assert_same_trials(settled_trials(plain) or [], truth.get_all_trials(ours._study_id))
    plain.ask()
    assert settled_trials(plain) is None


class _Counting:
    """Counts the statements sent on an engine, and the trials the adapter builds."""

    def __init__(self, storage: AdapterStorage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.statements = 0
        self.trials = 0
        event.listen(storage.engine, "before_cursor_execute", self._statement)
        read_where = _Adapter._read_where

        def counted(adapter: Any, *args: Any) -> tuple[list[FrozenTrial], list[int]]:
            trials, others = read_where(adapter, *args)
            self.trials += len(trials)
            return trials, others

        monkeypatch.setattr(_Adapter, "_read_where", counted)

    def _statement(self, *args: Any) -> None:
        self.statements += 1

    def reset(self) -> None:
        self.statements = self.trials = 0


def test_a_read_of_finished_trials_reads_only_what_finished(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six trials running in another worker: a read of complete trials reads none of them
    again, then only the one that finished (not one new since); a read of running trials
    reads them all."""
    ours, other, _ = _studies(db_url, "narrow")
    trials = [other.ask() for _ in range(6)]
    for trial in trials:
        trial.report(0.5, 1)
    assert len(_read(ours, None)) == 6  # the cache's first read: the whole study
    storage = ours._storage
    assert isinstance(storage, TrialCache)
    count = _Counting(storage._backend, monkeypatch)  # type: ignore[arg-type]
    assert _read(ours, (TrialState.COMPLETE,)) == []
    assert (count.statements, count.trials) == (1, 0)  # one statement, no trial built

    other.tell(trials[2], 1.5)
    other.ask()  # new, running: its contents are not needed
    count.reset()
    done = _read(ours, (TrialState.COMPLETE, TrialState.PRUNED))
    assert [(t.number, t.value) for t in done] == [(2, 1.5)]
    assert count.trials == 1
    count.reset()
    assert len(_read(ours, (TrialState.RUNNING,))) == 6
    assert count.trials == 6  # Optuna's refresh: every unfinished trial anew

    other.enqueue_trial({"cell_type": "lstm"})
    count.reset()
    waiting = _read(ours, (TrialState.WAITING,))
    assert [t.state for t in waiting] == [TrialState.WAITING] and count.trials == 1
    assert take_waiting_trial(other) is not None
    count.reset()
    assert _read(ours, (TrialState.WAITING,)) == []  # read as waiting before: not kept
    assert count.trials == 0


def test_the_trials_that_may_be_running_come_from_the_books(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery's question (which trials may be running) reads only the trials that
    finished since; on Optuna's own cache it is the running trials, read."""
    ours, other, _ = _studies(db_url, "books")
    first, second = other.ask(), other.ask()
    other.enqueue_trial({"cell_type": "gru"})
    waiting = other.get_trials(states=(TrialState.WAITING,))[0]._trial_id
    assert unfinished_trial_ids(ours) == [first._trial_id, second._trial_id, waiting]
    storage = ours._storage
    assert isinstance(storage, TrialCache)
    count = _Counting(storage._backend, monkeypatch)  # type: ignore[arg-type]
    other.tell(first, 1.0)
    assert other.ask()._trial_id == waiting  # the waiting trial runs now
    assert unfinished_trial_ids(ours) == [second._trial_id, waiting]
    assert (count.statements, count.trials) == (2, 1)  # the finished one (and its rows)
    plain = optuna.load_study(study_name="books", storage=optuna.storages.RDBStorage(db_url))
    other.enqueue_trial({"cell_type": "lstm"})
    assert unfinished_trial_ids(plain) == [second._trial_id, waiting]


def test_a_trial_made_here_is_seen_when_it_finishes(db_url: str) -> None:
    """A trial this cache made (known to it, never read as unfinished) that finishes past
    a later finished trial is still read when it finishes."""
    ours, other, truth = _studies(db_url, "own")
    _read(ours, None)
    mine = ours.ask()
    theirs = other.ask()
    other.tell(theirs, 2.0)
    assert [t.number for t in _read(ours, (TrialState.COMPLETE,))] == [theirs.number]
    ours.tell(mine, 1.0)
    done = _read(ours, (TrialState.COMPLETE,))
    assert [(t.number, t.value) for t in done] == [(mine.number, 1.0), (theirs.number, 2.0)]
    assert_same_trials(done, truth.get_all_trials(ours._study_id, states=(TrialState.COMPLETE,)))


def test_a_deleted_study_is_a_key_error_as_in_optunas_cache(db_url: str) -> None:
    ours, other, truth = _studies(db_url, "gone")
    other.tell(other.ask(), 1.0)
    assert len(_read(ours, (TrialState.COMPLETE,))) == 1
    truth.delete_study(ours._study_id)
    for states in [(TrialState.COMPLETE,), None]:
        with pytest.raises(KeyError, match="No study with study_id"):
            _read(ours, states)


def test_only_the_adapters_storage_gets_the_adapters_cache(sqlite_url: str) -> None:
    _studies(sqlite_url, "kinds")
    plain = load_study("kinds", optuna.storages.RDBStorage(sqlite_url))
    assert type(plain._storage).__name__ == "_CachedStorage"
    assert not isinstance(plain._storage, TrialCache)
    assert isinstance(load_study("kinds", AdapterStorage(sqlite_url))._storage, TrialCache)


def test_another_dialect_reads_as_optunas_cache(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the adapter's SQL does not run, every read is Optuna's refresh."""
    ours, other, truth = _studies(sqlite_url, "dialect")
    other.ask()
    other.tell(other.ask(), 1.0)
    _read(ours, None)
    monkeypatch.setattr(_Adapter, "_hot", lambda self: False)

    def refused(*args: Any) -> None:
        raise AssertionError("the narrow read ran")

    monkeypatch.setattr(_Adapter, "_changed_trials", refused)
    other.tell(other.ask(), 2.0)
    for states in READS:
        assert_same_trials(_read(ours, states), truth.get_all_trials(ours._study_id, states=states))
