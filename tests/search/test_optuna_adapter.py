"""The Optuna adapter: its writes, stale checks and study calls, on SQLite and PostgreSQL,
and its guard against an Optuna that moved an internal.

The bulk reads are checked against Optuna's own reads in ``test_optuna_adapter_reads.py``;
the per-cell view with the pruners in ``test_pruning.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
from optuna.storages import _cached_storage
from optuna.trial import TrialState
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    literal_column,
    select,
    table,
    text,
    update,
)
from sqlalchemy.exc import ProgrammingError

from cellsearch.search.errors import OptunaInternalsError
from cellsearch.search.optuna_adapter import (
    TESTED_OPTUNA,
    AdapterStorage,
    Heartbeats,
    TrialsStudy,
    _one_query,
    _storage,
    _tables,
    _versions,
    _writes,
    batch_capable,
    check_internals,
    is_tested,
    new_trial,
    rdb_backend,
    record_attrs,
    running_heartbeats,
    study_id_of,
    take_waiting_trial,
    trial_groups,
)
from cellsearch.search.record import Attr


def _storage_of(study: optuna.Study) -> optuna.storages.RDBStorage:
    storage = rdb_backend(study._storage)
    assert storage is not None
    return storage


def rdb_study(url: str) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=2)
    return optuna.create_study(storage=storage), storage


# --- versions and the internals check -------------------------------------------------


def test_the_installed_optuna_is_a_tested_version() -> None:
    # An upgrade fails here on purpose: run this file on the new version, check the
    # internals named in the package docstring, then add its series to TESTED_OPTUNA.
    assert is_tested(), (
        f"Optuna {optuna.__version__} is not among the versions the adapter was tested "
        f"against ({', '.join(TESTED_OPTUNA)})"
    )


def test_versions_are_compared_by_release_series() -> None:
    series = TESTED_OPTUNA[-1]
    assert is_tested(f"{series}.0") and is_tested(f"{series}.7")
    assert not is_tested("3.6.1")
    assert not is_tested(f"{series}0.0")  # "5.10" is not "5.1"


def test_the_installed_optuna_passes_the_check() -> None:
    check_internals()


def _without_instance_attr(
    monkeypatch: pytest.MonkeyPatch, cls: type, name: str, moved_to: str
) -> None:
    """Make ``cls.__init__`` leave ``name`` under another name, as a refactor would."""
    init = cls.__init__  # type: ignore[misc]

    def moved(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        setattr(self, moved_to, self.__dict__.pop(name))

    monkeypatch.setattr(cls, "__init__", moved)


def _table_class(name: str, *columns: Column[Any]) -> type:
    return type(name, (), {"__table__": Table(name.lower(), MetaData(), *columns)})


MOVES: dict[str, Any] = {
    "Study._pop_waiting_trial_id": lambda mp: mp.delattr(optuna.Study, "_pop_waiting_trial_id"),
    "Study._get_trials": lambda mp: mp.setattr(
        optuna.Study, "_get_trials", lambda self, deepcopy=True, states=None: []
    ),
    "RDBStorage._get_trials": lambda mp: mp.delattr(optuna.storages.RDBStorage, "_get_trials"),
    "RDBStorage._create_new_trial": lambda mp: mp.setattr(
        optuna.storages.RDBStorage, "_create_new_trial", lambda self, study_id, template=None: 0
    ),
    "BaseStorage.get_all_trials": lambda mp: mp.setattr(
        optuna.storages.BaseStorage, "get_all_trials", lambda self, study_id, states=None: []
    ),
    "Study._thread_local": lambda mp: _without_instance_attr(
        mp, optuna.Study, "_thread_local", "_local"
    ),
    "Study._study_id": lambda mp: _without_instance_attr(mp, optuna.Study, "_study_id", "_id"),
    "Trial._trial_id": lambda mp: _without_instance_attr(mp, optuna.Trial, "_trial_id", "_id"),
    "Trial._cached_frozen_trial": lambda mp: _without_instance_attr(
        mp, optuna.Trial, "_cached_frozen_trial", "_frozen"
    ),
    "_CachedStorage._backend": lambda mp: _without_instance_attr(
        mp, _writes._CachedStorage, "_backend", "_inner"
    ),
    "_CachedStorage._lock": lambda mp: _without_instance_attr(
        mp, _writes._CachedStorage, "_lock", "_mutex"
    ),
    "_add_trials_to_cache": lambda mp: mp.delattr(_writes._CachedStorage, "_add_trials_to_cache"),
    "unfinished_trial_ids": lambda mp: _without_instance_attr(
        mp, _cached_storage._StudyInfo, "unfinished_trial_ids", "unfinished"
    ),
    "last_finished_trial_id": lambda mp: _without_instance_attr(
        mp, _cached_storage._StudyInfo, "last_finished_trial_id", "last_finished"
    ),
    "TrialHeartbeatModel": lambda mp: mp.delattr(_tables.models, "TrialHeartbeatModel"),
    "trial_user_attributes.value_json": lambda mp: mp.setattr(
        _tables.models,
        "TrialUserAttributeModel",
        _table_class("Trial_User_Attributes", Column("trial_id", Integer), Column("key", String)),
    ),
    "unique key (trial_id) of table trial_heartbeats": lambda mp: mp.setattr(
        _tables.models,
        "TrialHeartbeatModel",
        _table_class("Trial_Heartbeats", Column("trial_id", Integer), Column("heartbeat", Integer)),
    ),
    "trials.state": lambda mp: mp.setattr(
        _tables.models,
        "TrialModel",
        _table_class("Trials", *(Column(c, String) for c in _tables.USED["TrialModel"])),
    ),
    "TrialModel._datetime_start_utc": lambda mp: mp.setattr(  # an Optuna 5 schema on 4
        _tables, "DATETIMES_IN_UTC", not _tables.DATETIMES_IN_UTC
    ),
    "optuna.storages._in_memory": lambda mp: mp.setattr(
        importlib.import_module("optuna.storages._in_memory"),
        "_logger",
        logging.getLogger("optuna.storages.in_memory"),
    ),
}


@pytest.mark.parametrize("name", sorted(MOVES))
def test_a_moved_internal_fails_the_check_by_name(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    MOVES[name](monkeypatch)
    with pytest.raises(OptunaInternalsError) as raised:
        check_internals()
    message = str(raised.value)
    assert name in message
    assert f"Optuna {optuna.__version__}" in message
    assert all(series in message for series in TESTED_OPTUNA)


def test_every_moved_internal_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    MOVES["Study._pop_waiting_trial_id"](monkeypatch)
    MOVES["TrialHeartbeatModel"](monkeypatch)
    with pytest.raises(OptunaInternalsError, match="_pop_waiting_trial_id") as raised:
        check_internals()
    assert "TrialHeartbeatModel" in str(raised.value)


def _load_fresh(module: Any) -> None:
    """Run ``module``'s code again, as a new module (the real one is left as it is)."""
    spec = importlib.util.spec_from_file_location("cellsearch_probe", module.__file__)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))


def test_a_missing_private_module_fails_at_import_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rdb = importlib.import_module("optuna.storages._rdb")
    monkeypatch.delattr(rdb, "models")
    monkeypatch.setitem(sys.modules, "optuna.storages._rdb.models", None)
    with pytest.raises(OptunaInternalsError, match=r"optuna\.storages\._rdb\.models"):
        _load_fresh(_tables)
    cached = importlib.import_module("optuna.storages._cached_storage")
    monkeypatch.delattr(cached, "_CachedStorage")
    with pytest.raises(OptunaInternalsError, match="_CachedStorage"):
        _load_fresh(_writes)


def test_an_untested_version_that_passes_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_versions, "TESTED_OPTUNA", ("0.1",))
    monkeypatch.setattr("cellsearch.search.optuna_adapter._internals.TESTED_OPTUNA", ("0.1",))
    with caplog.at_level(logging.WARNING):
        check_internals()
    assert "not among the versions" in caplog.text and "0.1" in caplog.text


# --- batched attribute writes ------------------------------------------------------------


def test_attributes_are_stored_updated_and_visible_on_the_trial(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    assert batch_capable(storage)
    assert batch_capable(study._storage)  # Optuna's cache around it
    assert rdb_backend(study._storage) is storage
    trial = study.ask()
    record_attrs(trial, {"a": 1, "b": [1, 2], "c": None})
    record_attrs(trial, {"a": 2})  # an update of the row, not a second row
    record_attrs(trial, {})  # nothing to write is fine
    assert trial.user_attrs == {"a": 2, "b": [1, 2], "c": None}
    study.tell(trial, 0.5)
    assert study.trials[0].user_attrs == {"a": 2, "b": [1, 2], "c": None}


def test_the_public_path_is_taken_off_rdb_storage() -> None:
    study = optuna.create_study()  # in-memory storage
    assert not batch_capable(study._storage)
    assert rdb_backend(study._storage) is None
    trial = study.ask()
    record_attrs(trial, {"a": 1}, heartbeat=True)  # no heartbeat to record there
    assert study.trials[0].user_attrs == {"a": 1}


def test_finished_trials_refuse_new_attributes(db_url: str) -> None:
    study, _ = rdb_study(db_url)
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        record_attrs(trial, {"late": 1})
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        record_attrs(trial, {"late": 2}, heartbeat=True)
    assert study.trials[0].user_attrs == {}
    with _storage_of(study).engine.connect() as conn:  # no heartbeat either
        assert conn.scalar(select(func.count()).select_from(_tables.HEARTBEATS)) == 0
    trial._trial_id = 999_999  # a trial the storage does not hold: Optuna's KeyError
    with pytest.raises(KeyError, match="Record does not exist"):
        record_attrs(trial, {"late": 3}, heartbeat=True)


# --- heartbeats and stale trials ---------------------------------------------------------


def _running(study: optuna.Study) -> list[int]:
    """The running trials' ids, as the worker's recovery reads them (Optuna's cache)."""
    return [t._trial_id for t in study.get_trials(states=(TrialState.RUNNING,))]


def _beats(study: optuna.Study, storage: optuna.storages.RDBStorage) -> Heartbeats:
    return running_heartbeats(storage, study_id_of(study), _running(study))


def test_heartbeat_is_recorded_and_refreshed_with_the_attributes(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    silent, beating = study.ask(), study.ask()
    assert _beats(study, storage) == Heartbeats([], {silent._trial_id, beating._trial_id})
    record_attrs(beating, {"x": 1}, heartbeat=True)
    record_attrs(beating, {}, heartbeat=True)  # the second beat updates the one row
    assert _beats(study, storage) == Heartbeats([], {silent._trial_id})  # fresh heartbeat
    assert storage._get_stale_trial_ids(study._study_id) == []  # as Optuna's check says
    asked = [silent._trial_id, beating._trial_id]
    study.tell(silent, 0.0)
    assert running_heartbeats(storage, study_id_of(study), asked) == Heartbeats([], set())
    assert running_heartbeats(storage, study_id_of(study), []) == Heartbeats([], set())


def test_a_silent_trial_is_found_among_others(db_url: str) -> None:
    # Recovery of trials that never sent a heartbeat rests on this answer never being
    # empty by mistake: a silent trial is found beside finished, waiting, beating ones
    # and the running trials of another study, whichever of them the caller names.
    study, storage = rdb_study(db_url)
    other = optuna.create_study(storage=storage)
    done = study.ask()
    study.tell(done, 1.0)
    beating = study.ask()
    record_attrs(beating, {}, heartbeat=True)
    silent = study.ask()
    study.enqueue_trial({"x": 1})
    elsewhere = other.ask()
    assert _beats(study, storage) == Heartbeats([], {silent._trial_id})
    every = [t._trial_id for t in study.get_trials()] + [elsewhere._trial_id]
    assert running_heartbeats(storage, study_id_of(study), every).silent == {silent._trial_id}
    assert done._trial_id in every


def test_a_trial_whose_heartbeat_is_old_is_stale(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    dead, alive = study.ask(), study.ask()
    record_attrs(dead, {}, heartbeat=True)
    record_attrs(alive, {}, heartbeat=True)
    beats = _tables.HEARTBEATS
    with storage.engine.begin() as conn:  # the dead worker's last beat, long ago
        conn.execute(
            update(beats)
            .where(beats.c.trial_id == dead._trial_id)
            .values(heartbeat=datetime(2000, 1, 1))
        )
    assert _beats(study, storage) == Heartbeats([dead._trial_id], set())
    assert storage._get_stale_trial_ids(study._study_id) == [dead._trial_id]  # Optuna agrees
    # a beat just past the grace period (by the database's clock) is stale; one inside is not
    with storage.engine.begin() as conn:
        now = conn.execute(select(func.now())).scalar_one().replace(tzinfo=None)
        for trial, age in ((dead, 2.5), (alive, 1.0)):  # grace period 2 s
            conn.execute(
                update(beats)
                .where(beats.c.trial_id == trial._trial_id)
                .values(heartbeat=now - timedelta(seconds=age))
            )
    assert _beats(study, storage) == Heartbeats([dead._trial_id], set())


# --- calls on a study ----------------------------------------------------------------------


def test_study_id_is_the_storage_id(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    assert study_id_of(study) == storage.get_study_id_from_name(study.study_name)


def test_a_waiting_trial_is_taken_once(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    assert take_waiting_trial(study) is None  # nothing enqueued: no new trial either
    assert study.trials == []
    study.enqueue_trial({"x": 0.5}, user_attrs={"job": 1})
    twin = optuna.load_study(study_name=study.study_name, storage=storage)
    taken = take_waiting_trial(twin)
    assert taken is not None
    assert taken.suggest_float("x", 0.0, 1.0) == 0.5  # the enqueued parameters
    assert taken.user_attrs == {"job": 1}
    assert take_waiting_trial(study) is None  # taken once, by one study object
    (trial,) = study.get_trials()
    assert trial.state == TrialState.RUNNING


# --- trial counts ----------------------------------------------------------------------


def test_trial_groups_count_what_optuna_holds(db_url: str) -> None:
    storage = optuna.storages.RDBStorage(db_url)
    studies = [optuna.create_study(study_name=name, storage=storage) for name in "ab"]
    a, b = studies
    for i, state in enumerate([TrialState.COMPLETE] * 3 + [TrialState.PRUNED, TrialState.FAIL]):
        trial = a.ask()
        trial.set_user_attr(Attr.CELL_TYPE, ["lstm", "gru"][i % 2])
        if state == TrialState.FAIL:
            trial.set_user_attr(Attr.FAILURE_KIND, "diverged")
        a.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    rerun = a.ask()
    rerun.set_user_attr(Attr.REEVALUATION_OF, 0)
    a.tell(rerun, 0.5)
    a.ask()  # running, no attribute
    b.enqueue_trial({})
    engine = create_engine(db_url)
    with engine.connect() as conn:
        groups = trial_groups(conn, ["a", "b", "none"])
        assert trial_groups(conn, []) == []
    engine.dispose()
    found = Counter[tuple[Any, ...]]()
    for g in groups:
        found[g.study_name, g.state, g.failure_kind, g.cell_type, g.reevaluation] += g.n
    expected = Counter[tuple[Any, ...]]()  # the same, from Optuna's own reads
    for study in studies:
        for t in study.get_trials():
            attrs = t.user_attrs
            key = (study.study_name, t.state, attrs.get(Attr.FAILURE_KIND),
                   attrs.get(Attr.CELL_TYPE), Attr.REEVALUATION_OF in attrs)  # fmt: skip
            expected[key] += 1
    assert found == expected
    assert ("a", TrialState.FAIL, "diverged", "lstm", False) in found  # decoded values


# --- a study of given trials -------------------------------------------------------------


def test_a_trials_study_serves_the_given_trials(caplog: pytest.LogCaptureFixture) -> None:
    source = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    source.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("y", 0, 3), 12)
    source.tell(source.ask(), state=TrialState.FAIL)
    trials = source.get_trials(deepcopy=False)
    given = [*trials[1::2], trials[-1]]  # ids 1, 3, ..., 11 and the failed 12
    ids = [t._trial_id for t in given]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="optuna"):
        study = TrialsStudy(given, maximize=True)
    assert "A new study created" not in caplog.text  # its storage's INFO line is silenced
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    served = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.number for t in served] == [t.number for t in given[:-1]]
    assert [t._trial_id for t in study.get_trials(deepcopy=False)] == list(range(len(given)))
    assert [t._trial_id for t in given] == ids  # the given trials are left as they were
    assert all(a is not b for a, b in zip(study.get_trials(), given, strict=True))
    shares = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    assert set(shares) == {"x", "y"}


def test_a_finished_trial_is_refused_on_the_one_connection_the_write_holds(
    db_url: str,
) -> None:
    """One connection left in the pool: a refusal that needed a second one (Optuna's check
    reads the trial) would wait for it while holding the first, as behind an exhausted
    pooler."""
    storage = optuna.storages.RDBStorage(
        db_url, engine_kwargs={"pool_size": 2, "max_overflow": 0, "pool_timeout": 2}
    )
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    study.tell(trial, 1.0)
    refused = pytest.raises(optuna.exceptions.UpdateFinishedTrialError, match="already")
    with storage.engine.connect(), refused:  # one of two taken: the write gets the other
        record_attrs(trial, {}, heartbeat=True)
    storage.engine.dispose()


# --- numbering new trials without a count ---------------------------------------------


def _numbers_in_id_order(storage: optuna.storages.RDBStorage, name: str) -> list[int]:
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    return [t.number for t in sorted(trials, key=lambda t: t._trial_id)]


def test_new_trials_are_numbered_as_optuna_numbers_them(db_url: str) -> None:
    """Both creators, Optuna's count and the latest-number path, from threads on two
    interleaved studies, with enqueued trials (Optuna's template path) among them: every
    study's numbers are 0, 1, 2, ... in id order, as Optuna's count makes them."""
    ours = AdapterStorage(db_url)
    plain = optuna.storages.RDBStorage(db_url)
    names = ["numbered-a", "numbered-b"]
    for name in names:
        optuna.create_study(storage=ours, study_name=name)
    errors: list[BaseException] = []

    def create(storage: optuna.storages.RDBStorage, name: str) -> None:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            for i in range(12):
                if i % 5 == 2:
                    study.enqueue_trial({"x": float(i)})
                trial = new_trial(study)
                study.tell(trial, float(i))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=create, args=(storage, name))
        for storage in (ours, plain, ours)
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for name in names:
        numbers = _numbers_in_id_order(plain, name)
        assert len(numbers) == 3 * (12 + 2)  # each thread's new trials and enqueued ones
        assert numbers == list(range(len(numbers)))


def test_a_numbered_trial_is_the_trial_optuna_reads_back(db_url: str) -> None:
    ours = AdapterStorage(db_url)
    study = optuna.create_study(storage=ours)
    first = ours._create_new_trial(study._study_id)
    second = ours._create_new_trial(study._study_id)
    assert (first.number, second.number) == (0, 1)
    plain = optuna.storages.RDBStorage(db_url)
    for made in (first, second):
        read = plain.get_trial(made._trial_id)
        assert read == made  # number, state, start time (in its stored form), all empty
        assert read.datetime_start == made.datetime_start
        assert read.state == TrialState.RUNNING


def test_numbering_refuses_a_missing_study_and_writes_nothing(db_url: str) -> None:
    ours = AdapterStorage(db_url)
    study = optuna.create_study(storage=ours)
    with pytest.raises(KeyError, match="No study with study_id 999999"):
        ours._create_new_trial(999999)
    assert ours._create_new_trial(study._study_id).number == 0
    with ours.engine.connect() as conn:  # the refused trial left no row behind
        assert conn.scalar(select(func.count()).select_from(_tables.TRIALS)) == 1


def _count_optunas_numbering(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The ids of the trials that Optuna's own code numbers (by its count) from now on."""
    counted: list[int] = []
    count = _tables.models.TrialModel.count_past_trials

    def counting(self: Any, session: Any) -> int:
        counted.append(self.trial_id)
        return int(count(self, session))

    monkeypatch.setattr(_tables.models.TrialModel, "count_past_trials", counting)
    return counted


def test_a_template_or_another_database_takes_optunas_own_path(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = AdapterStorage(db_url)
    study = optuna.create_study(storage=ours)
    counted = _count_optunas_numbering(monkeypatch)
    ours._create_new_trial(study._study_id)
    new_trial(study, {"deal": 3})  # a running trial with attributes only: the same path
    assert counted == []  # the claim's path: no count
    study.enqueue_trial({"x": 1.0})
    assert len(counted) == 1  # a template: Optuna's own code
    running = optuna.trial.create_trial(state=TrialState.RUNNING, params={"x": 1.0},
                                        distributions={"x": FloatDistribution(0, 2)})  # fmt: skip
    ours._create_new_trial(study._study_id, running)  # a running template with more
    assert len(counted) == 2
    monkeypatch.setattr(_storage, "_DIALECTS", ("mysql",))
    made = ours._create_new_trial(study._study_id)
    assert counted[-1] == made._trial_id and made.number == 4


@contextlib.contextmanager
def _messages_to_server(storage: optuna.storages.RDBStorage, folder: Path) -> Iterator[list[str]]:
    """The protocol messages the storage's connections send meanwhile (libpq's trace):
    each one's type and the start of its text, e.g. ``Query "BEGIN``, ``Sync``."""
    sent: list[str] = []
    path = folder / "trace.txt"
    with path.open("w") as trace:

        def on(dbapi: Any, *_: Any) -> None:
            dbapi.pgconn.trace(trace.fileno())

        def off(dbapi: Any, *_: Any) -> None:
            dbapi.pgconn.untrace()

        event.listen(storage.engine, "checkout", on)
        event.listen(storage.engine, "checkin", off)
        try:
            yield sent
        finally:
            event.remove(storage.engine, "checkout", on)
            event.remove(storage.engine, "checkin", off)
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 4 and fields[1] == "F":
            sent.append((fields[3] + (fields[4] if len(fields) > 4 else ""))[:40])


def test_a_trials_calls_on_postgresql_make_no_transactions_of_their_own(
    postgres_url: str, tmp_path: Path
) -> None:
    """A trial's life, made, read, written and ended: each statement its own transaction
    (no ``BEGIN``, ``COMMIT`` or ``ROLLBACK`` round trips), and each lock with the writes
    it guards one query (the new trial; its attributes and heartbeat; its end)."""
    ours = AdapterStorage(postgres_url)
    study = optuna.create_study(storage=ours)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # x's distribution
    with _messages_to_server(ours, tmp_path) as sent:
        trial = new_trial(study, {"deal": 1})
        trial.suggest_float("x", 0, 1)
        trial.report(0.5, step=0)
        ours.get_trial(trial._trial_id)
        study.get_trials()
        record_attrs(trial, {"epoch": 1}, heartbeat=True)
        study.tell(trial, 0.25)
    queries = [m for m in sent if m.startswith("Query")]
    assert len(queries) == 3 and queries[0] == sent[0]
    assert queries[0].startswith('Query "SELECT studies.study_id')
    assert all(q.startswith('Query "SELECT trials.state') for q in queries[1:])
    assert not [m for m in sent if any(w in m for w in ("BEGIN", "COMMIT", "ROLLBACK"))]
    written = [m for m in sent if m.startswith('Parse "" "INSERT INTO trial_')]
    assert len(written) == 2  # the parameter and the report
    ended = study.trials[1]
    assert (ended.state, ended.value, list(ended.params)) == (TrialState.COMPLETE, 0.25, ["x"])
    assert ended.user_attrs == {"deal": 1, "epoch": 1} and ended.datetime_complete is not None


def test_statements_sent_together_may_not_share_an_anonymous_parameter(
    postgres_url: str,
) -> None:
    """Compiled apart, two statements may each name a literal ``param_1``: bound once for
    both, one would run with the other's value."""
    engine = AdapterStorage(postgres_url).engine  # Optuna's tables made
    one = select(_tables.TRIALS.c.trial_id).limit(1)
    two = select(_tables.TRIALS.c.trial_id).limit(2)
    with engine.connect() as conn:
        assert _one_query.run_together(conn, (one, one), {}) == [[], []]  # the same value
        with pytest.raises(RuntimeError, match="anonymous 'param_1'"):
            _one_query.run_together(conn, (one, two), {})
        missing: Any = select(literal_column("1")).select_from(table("no_such_table"))
        with pytest.raises(ProgrammingError, match="no_such_table"):  # as SQLAlchemy raises
            _one_query.run_together(conn, (one, missing), {})
        assert _one_query.run_together(conn, (one,), {}) == [[]]  # the connection goes on
    engine.dispose()


def test_a_creator_waits_for_the_lock_and_numbers_after_its_holder(postgres_url: str) -> None:
    """On PostgreSQL the lock and the insert go to the server as one query: the insert must
    still see the trial that the lock's previous holder made (a single statement would
    number from its snapshot, taken before it waited: a duplicate number)."""
    ours = AdapterStorage(postgres_url)
    study = optuna.create_study(storage=ours)
    sid = study._study_id
    made: list[Any] = []
    with ours.engine.begin() as conn:  # another creator, as Optuna's: lock, count, insert
        conn.execute(select(_tables.STUDIES.c.study_id).where(
            _tables.STUDIES.c.study_id == sid).with_for_update())  # fmt: skip
        conn.execute(_tables.TRIALS.insert().values(
            number=0, study_id=sid, state=TrialState.RUNNING))  # fmt: skip
        waiting = threading.Thread(target=lambda: made.append(new_trial(study, {"deal": 1})))
        waiting.start()
        waiting.join(timeout=1.0)
        assert waiting.is_alive()  # it waits for the lock
    waiting.join()
    assert made[0].number == 1 and made[0].user_attrs == {"deal": 1}
    assert _numbers_in_id_order(ours, study.study_name) == [0, 1]


def test_a_lost_connection_while_numbering_is_optunas_error_and_the_next_trial_is_made(
    postgres_url: str,
) -> None:
    ours = AdapterStorage(postgres_url, engine_kwargs={"pool_pre_ping": False})  # a worker's
    study = optuna.create_study(storage=ours)
    assert ours._create_new_trial(study._study_id).number == 0
    admin = create_engine(postgres_url)
    with admin.connect() as conn:  # the storage's pooled connections end
        others = (pid for pid in conn.scalars(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()")))  # fmt: skip
        assert all(conn.scalar(select(func.pg_terminate_backend(pid))) for pid in others)
    admin.dispose()
    with pytest.raises(optuna.exceptions.StorageInternalError):
        ours._create_new_trial(study._study_id)
    again = ours._create_new_trial(study._study_id)  # on a new connection: nothing lost
    assert again.number == 1
    assert _numbers_in_id_order(ours, study.study_name) == [0, 1]
    ours.engine.dispose()


def test_another_postgresql_driver_takes_optunas_own_path(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = AdapterStorage(postgres_url)
    study = optuna.create_study(storage=ours)
    counted = _count_optunas_numbering(monkeypatch)
    assert new_trial(study, {"deal": 2}).number == 0 and counted == []
    monkeypatch.setattr(ours.engine.dialect, "driver", "psycopg2")  # no client-side binding
    made = new_trial(study, {"deal": 3})
    assert (made.number, made.user_attrs, counted) == (1, {"deal": 3}, [made._trial_id])


@pytest.mark.parametrize("storage", ["ours", "in-memory"])
def test_a_new_trial_is_made_with_its_attributes(db_url: str, storage: str) -> None:
    """``new_trial(study, attrs)``: one transaction on the adapter's storage, Optuna's own
    template path elsewhere; the same running trial either way, as Optuna reads it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    backend = AdapterStorage(db_url) if storage == "ours" else optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=backend)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    attrs = {"deal": 7, "cell_type": "gru", "nested": {"a": [1, 2]}}
    before = datetime.now()
    trial = new_trial(study, attrs)
    assert trial.number == 2 and trial.user_attrs == attrs
    if storage == "ours":
        study = optuna.load_study(study_name=study.study_name, storage=db_url)
    stored = study.get_trials()[2]
    assert stored.state == TrialState.RUNNING and stored.user_attrs == attrs
    assert stored.datetime_start is not None and stored.datetime_start >= before
    assert stored.params == {} and stored.system_attrs == {}
    trial.suggest_float("x", 0, 1)  # it runs as any trial does
    study.tell(trial.number, 0.5)
    assert study.get_trials()[2].state == TrialState.COMPLETE
