"""The adapter's bulk reader returns exactly what ``optuna.load_study(...).get_trials()`` does.

Random studies (seeded, several per back end) hold trials in every state (running,
waiting, complete, pruned, fail), intermediate values with NaN and infinities, user and
system attributes of every JSON type, and categorical, int, float, log and stepped
parameters; every filter and page is checked against Optuna's trials filtered in Python
with :func:`cellsearch.search.record.cell_of`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import optuna
import pytest
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine, update

from cellsearch.search.optuna_adapter import (
    AdapterStorage,
    _frozen,
    _storage,
    bulk_read,
    rdb_backend,
)
from cellsearch.search.optuna_adapter._tables import PARAMS
from cellsearch.search.optuna_adapter.bulk_read import TrialFilter
from cellsearch.search.record import TrialRecord, cell_of

CELLS = ["lstm", "gru", "mgu"]
Direction = Literal["minimize", "maximize"]
JSON_VALUES: list[Any] = [
    None, True, False, 0, -7, 2**40, 1.5, -0.0, 1e-300, float("nan"), float("inf"), "",
    "lstm", "é ü 中文 \"quoted\" \\ back", [], [1, "a", None, [2.5]], {}, {"a": {"b": [1, {}]}},
]  # fmt: skip
STEP_VALUES = [0.5, 0.0, -1.25, float("nan"), float("inf"), float("-inf"), 1e308]


def same(a: Any, b: Any) -> bool:
    """Equality in which NaN equals NaN, dict key order included, types compared."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def assert_same_trials(ours: list[FrozenTrial], theirs: list[FrozenTrial]) -> None:
    assert [t.number for t in ours] == [t.number for t in theirs]
    for mine, optunas in zip(ours, theirs, strict=True):
        for key, value in optunas.__dict__.items():
            if key in ("_user_attrs", "_system_attrs", "intermediate_values"):
                # Optuna's order of these is its ORM's load order; compare as mappings
                assert set(mine.__dict__[key]) == set(value), (mine.number, key)
                assert all(same(mine.__dict__[key][k], value[k]) for k in value), (mine.number, key)
            else:
                assert same(mine.__dict__[key], value), (mine.number, key)
        assert set(mine.__dict__) == set(optunas.__dict__)


def _suggest(trial: optuna.Trial, rng: np.random.Generator) -> None:
    trial.suggest_categorical("cell_type", CELLS)
    trial.suggest_int("hidden_size", 8, 256, log=True)
    trial.suggest_int("layers", 1, 4)
    trial.suggest_int("stride", 0, 20, step=5)
    trial.suggest_float("learning_rate", 1e-5, 1e-1, log=True)
    trial.suggest_float("dropout", 0.0, 0.5)
    trial.suggest_float("clip", 0.0, 2.0, step=0.25)
    trial.suggest_categorical("mixed", [None, 1, 2.5, "a", True])
    if rng.random() < 0.5:  # a conditional parameter
        trial.suggest_float("forget_bias", -1.0, 3.0)


def _decorate(study: optuna.Study, trial: optuna.Trial, rng: np.random.Generator) -> None:
    for step in range(int(rng.integers(0, 6))):
        trial.report(STEP_VALUES[int(rng.integers(len(STEP_VALUES)))], step * 2)
    for i in rng.choice(len(JSON_VALUES), size=int(rng.integers(0, 6)), replace=False):
        trial.set_user_attr(f"attr_{i}", JSON_VALUES[int(i)])
    if rng.random() < 0.7:  # the attribute a worker writes; sometimes disagreeing
        attr = CELLS[int(rng.integers(3))] if rng.random() < 0.3 else trial.params["cell_type"]
        trial.set_user_attr("cell_type", attr)
    if rng.random() < 0.3:
        study._storage.set_trial_system_attr(trial._trial_id, "note", {"n": [1, None]})


def random_study(url: str, seed: int, direction: Direction = "minimize") -> optuna.Study:
    """A study of about 30 trials in every state (seeded)."""
    rng = np.random.default_rng(seed)
    study = optuna.create_study(study_name=f"s{seed}", storage=url, direction=direction)
    finals = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING]
    for _ in range(24):
        trial = study.ask()
        _suggest(trial, rng)
        _decorate(study, trial, rng)
        state = finals[int(rng.choice(4, p=[0.45, 0.25, 0.15, 0.15]))]
        if state == TrialState.COMPLETE:
            value = [0.3, float("inf"), float("-inf"), float(rng.normal())][int(rng.integers(4))]
            study.tell(trial, value)
        elif state != TrialState.RUNNING:
            study.tell(trial, state=state)
    study.enqueue_trial({"cell_type": "gru", "layers": 2})  # WAITING, params in system attrs
    _special_trials(study)
    return study


def _special_trials(study: optuna.Study) -> None:
    """Trials made by hand: cell type only as an attribute, odd cell parameters, none.

    Optuna refuses a second distribution for a parameter of a study, which a database
    may hold all the same (written by another version, or by hand): those are written
    as ordinary trials and their parameter row rewritten.
    """
    cells = CategoricalDistribution(CELLS)
    odd: list[tuple[int, BaseDistribution, float]] = []
    cases: list[tuple[dict[str, Any], dict[str, Any], tuple[BaseDistribution, float] | None]] = [
        ({}, {"cell_type": "gru"}, None),  # the attribute alone names the cell
        ({}, {"cell_type": None}, None),
        ({}, {"cell_type": 3}, None),
        ({}, {}, None),
        ({"cell_type": "gru"}, {"cell_type": "lstm"}, None),  # the parameter wins
        ({"cell_type": "gru"}, {}, (CategoricalDistribution(["mgu", "lstm"]), 0.0)),
        ({"cell_type": "gru"}, {}, (IntDistribution(0, 5), 3.0)),
        ({"cell_type": "gru"}, {"cell_type": "gru"}, (FloatDistribution(0.0, 1.0), 0.25)),
    ]
    for params, attrs, rewrite in cases:
        trial = optuna.trial.create_trial(
            state=TrialState.COMPLETE,
            value=1.0,
            params=params,
            distributions={k: cells for k in params},
            user_attrs=attrs,
        )
        study.add_trial(trial)
        if rewrite is not None:
            odd.append((study.trials[-1]._trial_id, *rewrite))
    backend = rdb_backend(study._storage)
    assert backend is not None
    with backend.engine.begin() as conn:
        for trial_id, distribution, internal in odd:
            conn.execute(
                update(PARAMS)
                .where(PARAMS.c.trial_id == trial_id, PARAMS.c.param_name == "cell_type")
                .values(distribution_json=distribution_to_json(distribution), param_value=internal)
            )


@pytest.fixture(params=[0, 1, 2])
def study(request: pytest.FixtureRequest, db_url: str) -> Iterator[optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield random_study(db_url, seed=int(request.param))


def _read(url: str, name: str, where: TrialFilter = bulk_read.ALL, **page: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            study_id = bulk_read.find_study_id(conn, name)
            assert study_id is not None
            trials = bulk_read.read_trials(conn, study_id, where, **page)
            if not page:  # the ids of the selection, then the trials with those ids
                ids = bulk_read.trial_ids(conn, study_id, where)
                assert ids == [t._trial_id for t in trials]
                assert_same_trials(bulk_read.read_trials_by_id(conn, ids), trials)
            return trials, bulk_read.count_trials(conn, study_id, where)
    finally:
        engine.dispose()


def _optuna_trials(study: optuna.Study) -> list[FrozenTrial]:
    return optuna.load_study(study_name=study.study_name, storage=_url(study)).get_trials()


def _url(study: optuna.Study) -> str:
    backend = rdb_backend(study._storage)
    assert backend is not None
    return str(backend.url)


def test_every_trial_equals_optunas(study: optuna.Study) -> None:
    theirs = _optuna_trials(study)
    ours, total = _read(_url(study), study.study_name)
    assert total == len(theirs) == len(ours)
    assert {t.state for t in theirs} == set(TrialState)  # every state is exercised
    assert any(math.isnan(v) for t in theirs for v in t.intermediate_values.values())
    assert_same_trials(ours, theirs)
    for mine, optunas in zip(ours, theirs, strict=True):  # parameters keep Optuna's order
        assert list(mine.params) == list(optunas.params)
        assert list(mine.distributions) == list(optunas.distributions)
    assert [TrialRecord.of(t) for t in ours] == [TrialRecord.of(t) for t in theirs]


FILTER_CELLS = [None, "lstm", "gru", "mgu", "3", "0.25", "None", "rnn"]
FILTER_STATES = [None, (TrialState.COMPLETE,), (TrialState.PRUNED, TrialState.FAIL), ()]


def test_filters_and_pages_equal_optunas_filtered(study: optuna.Study) -> None:
    theirs = _optuna_trials(study)
    rng = np.random.default_rng(len(theirs))
    for cell_type, states in itertools.product(FILTER_CELLS, FILTER_STATES):
        where = TrialFilter(states=states, cell_type=cell_type)
        expected = [
            t
            for t in theirs
            if (states is None or t.state in states)
            and (cell_type is None or cell_of(t) == cell_type)
        ]
        ours, total = _read(_url(study), study.study_name, where)
        assert total == len(expected)
        assert_same_trials(ours, expected)
        offset, limit = int(rng.integers(0, 8)), int(rng.integers(1, 6))
        page, _ = _read(_url(study), study.study_name, where, offset=offset, limit=limit)
        assert_same_trials(page, expected[offset : offset + limit])
    gru, _ = _read(_url(study), study.study_name, TrialFilter(cell_type="gru"))
    assert any("cell_type" not in t.params for t in gru)  # the attribute alone counts
    assert any(t.user_attrs.get("cell_type") == "lstm" for t in gru)  # the parameter wins
    numeric, _ = _read(_url(study), study.study_name, TrialFilter(cell_type="3"))
    assert {type(t.params.get("cell_type")) for t in numeric} == {int, type(None)}


def test_pages_past_the_end_are_empty(sqlite_url: str) -> None:
    study = random_study(sqlite_url, seed=5)
    ours, total = _read(sqlite_url, study.study_name, offset=2**31 - 1, limit=50)
    assert ours == [] and total == len(study.trials)


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_datetimes_convert_like_optuna_in_any_time_zone(
    sqlite_url: str, tz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = random_study(sqlite_url, seed=7)
    monkeypatch.setenv("TZ", tz)
    time.tzset()
    try:
        theirs = _optuna_trials(study)
        ours, _ = _read(sqlite_url, study.study_name)
        assert [t.datetime_start for t in ours] == [t.datetime_start for t in theirs]
        assert [t.datetime_complete for t in ours] == [t.datetime_complete for t in theirs]
        assert any(t.datetime_complete for t in ours)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_best_trial_equals_optunas(db_url: str, direction: Direction) -> None:
    engine = create_engine(db_url)
    study = optuna.create_study(study_name="best", storage=db_url, direction=direction)
    with engine.connect() as conn:
        study_id = bulk_read.find_study_id(conn, "best")
        assert study_id is not None
        assert bulk_read.best_trial(conn, study_id) is None  # nothing completed yet
        study.tell(study.ask(), state=TrialState.PRUNED)
        assert bulk_read.best_trial(conn, study_id) is None
        for value in [0.5, -2.0, 3.0, float("-inf"), float("inf"), 1.0]:
            trial = study.ask()
            trial.suggest_categorical("cell_type", CELLS)
            study.tell(trial, value)
            conn.rollback()  # a fresh snapshot (PostgreSQL keeps none across; SQLite may)
            best = bulk_read.best_trial(conn, study_id)
            assert best is not None
            assert_same_trials([best], [optuna.load_study(study_name="best", storage=db_url)
                                        .best_trial])  # fmt: skip
    engine.dispose()


def test_best_trial_breaks_ties_by_number(sqlite_url: str) -> None:
    study = optuna.create_study(study_name="ties", storage=sqlite_url)
    for value in [2.0, 1.0, 1.0, 1.0]:
        study.tell(study.ask(), value)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        best = bulk_read.best_trial(conn, bulk_read.find_study_id(conn, "ties") or -1)
    engine.dispose()
    assert best is not None and best.number == 1


def test_change_marker_moves_when_a_trial_starts_or_finishes(db_url: str) -> None:
    study = optuna.create_study(study_name="marker", storage=db_url)
    engine = create_engine(db_url)

    def marker() -> tuple[Any, ...]:
        with engine.connect() as conn:
            study_id = bulk_read.find_study_id(conn, "marker") or -1
            return bulk_read.change_markers(conn, [study_id])[study_id]

    empty = marker()
    trial = study.ask()
    started = marker()
    trial.set_user_attr("seconds", 1.0)
    trial.report(0.5, 1)
    assert marker() == started != empty  # attributes of a running trial do not move it
    study.tell(trial, 0.5)
    finished = marker()
    assert finished != started
    other = study.ask()
    study.tell(other, state=TrialState.FAIL)
    assert marker() not in (finished, started)
    engine.dispose()


def test_a_marker_counts_the_trials_of_each_state_filter(study: optuna.Study) -> None:
    engine = create_engine(_url(study))
    try:
        with engine.connect() as conn:
            study_id = bulk_read.find_study_id(conn, study.study_name)
            assert study_id is not None
            marker = bulk_read.change_markers(conn, [study_id])[study_id]
            for states in [*FILTER_STATES, (TrialState.RUNNING, TrialState.WAITING)]:
                counted = bulk_read.count_in_marker(marker, states)
                expected = sum(states is None or t.state in states for t in study.trials)
                assert (
                    counted
                    == expected
                    == bulk_read.count_trials(conn, study_id, TrialFilter(states=states))
                )
            assert {state for state, _n, _last in marker} >= {"RUNNING", "WAITING", "FAIL"}
    finally:
        engine.dispose()


def test_unknown_study_has_no_id(sqlite_url: str) -> None:
    optuna.create_study(study_name="known", storage=sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        assert bulk_read.find_study_id(conn, "unknown") is None
        assert bulk_read.read_trials_by_id(conn, []) == []
    engine.dispose()


def test_rows_read_in_small_chunks_give_the_same_trials(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = random_study(sqlite_url, seed=11)
    chunks = _frozen.chunks
    monkeypatch.setattr(_frozen, "chunks", lambda conn, query: chunks(conn, query, size=3))
    ours, _ = _read(sqlite_url, study.study_name)
    assert_same_trials(ours, _optuna_trials(study))


# --- the reads behind Optuna's trial cache ---------------------------------------------


def test_the_storage_reads_what_optunas_own_read_returns(
    study: optuna.Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``AdapterStorage._get_trials`` against ``RDBStorage._get_trials`` on every kind of
    trial, for each selection Optuna's cache makes: the first read, the unfinished trials
    it knows and those past the last finished one, a state filter; with the ids listed
    (their child rows in one query, then in one per table) and with the selection as a
    subquery. A single trial's read (``get_trial``) too."""
    url = _url(study)
    ours, theirs = AdapterStorage(url), optuna.storages.RDBStorage(url)
    study_id = study._study_id
    trials = theirs._get_trials(study_id, None, set(), -1)
    unfinished = {t._trial_id for t in trials if not t.state.is_finished()}
    middle = trials[len(trials) // 2]._trial_id
    asks: list[tuple[Any, set[int], int]] = [
        (None, set(), -1),
        (None, unfinished, middle),  # as the cache asks after its first read
        (None, set(), middle),
        ((TrialState.WAITING,), set(), -1),
        ((TrialState.COMPLETE, TrialState.PRUNED), unfinished, middle),
        (None, {trials[-1]._trial_id}, trials[-1]._trial_id),  # nothing past the last
    ]
    for listed, few in ((500, 100), (500, 0), (0, 100)):  # one query, per table, subquery
        monkeypatch.setattr(_storage, "_LISTED_IDS", listed)
        monkeypatch.setattr(_frozen, "FEW", few)
        for states, included, greater in asks:
            mine = ours._get_trials(study_id, states, set(included), greater)
            assert_same_trials(mine, theirs._get_trials(study_id, states, included, greater))
        assert_same_trials([ours.get_trial(t._trial_id) for t in trials], trials)
    assert len(ours._get_trials(study_id, None, set(), -1)) == len(trials) > 30
    with pytest.raises(KeyError, match="No study with study_id 999999"):
        ours._get_trials(999999, None, set(), -1)


def test_a_cached_study_on_the_storage_sees_what_optuna_sees(db_url: str) -> None:
    """Optuna's trial cache over this storage, through a study's life: its trials are the
    ones a study on Optuna's plain storage reads."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = optuna.create_study(storage=AdapterStorage(db_url), study_name="cached")
    rng = np.random.default_rng(5)
    for round_ in range(3):
        for _ in range(4):
            trial = ours.ask()
            _suggest(trial, rng)
            _decorate(ours, trial, rng)
            if rng.random() < 0.7:
                ours.tell(trial, float(rng.normal()))
        ours.enqueue_trial({"cell_type": "gru"})
        plain = optuna.load_study(study_name="cached", storage=optuna.storages.RDBStorage(db_url))
        assert_same_trials(ours.get_trials(), plain.get_trials())
        assert len(ours.get_trials()) == 4 * (round_ + 1) + 1  # asks take the enqueued one


def test_parameters_keep_optunas_order_however_the_rows_come(db_url: str) -> None:
    """Parameters suggested out of name order, the first one's row then rewritten (a
    PostgreSQL update moves it to the end of the table): read without an ``ORDER BY``, in
    name order or moved, they still come out in Optuna's order."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=db_url, study_name="order")
    for _ in range(3):
        trial = study.ask()
        for name in ("zeta", "alpha", "mu", "beta"):
            trial.suggest_float(name, 0.0, 1.0)
        study.tell(trial, 1.0)
    backend = rdb_backend(study._storage)
    assert backend is not None
    with backend.engine.begin() as conn:
        conn.execute(update(PARAMS).where(PARAMS.c.param_name == "zeta").values(param_value=0.5))
    theirs = _optuna_trials(study)
    ours, _ = _read(_url(study), "order")
    assert [list(t.params) for t in theirs] == [["zeta", "alpha", "mu", "beta"]] * 3
    assert [list(t.params) for t in ours] == [list(t.params) for t in theirs]
    assert_same_trials(ours, theirs)
