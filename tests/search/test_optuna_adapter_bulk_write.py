"""The bulk writer writes what Optuna writes: a study copied with it reads back equal, with
Optuna's own reader and the bulk reader, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError

from cellsearch.search.optuna_adapter import bulk_read, bulk_write

DISTS = {
    "cell_type": CategoricalDistribution(["lstm", "gru", None]),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "layers": IntDistribution(1, 3),
}


STATES = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.COMPLETE,
          TrialState.WAITING, TrialState.RUNNING]  # fmt: skip
ATTRS = {"n": 1, "x": 0.5, "s": "é", "l": [1, None], "d": {"a": True}, "none": None}
STEPS = {0: 1.0, 1: math.nan, 2: math.inf, 3: -math.inf}


def varied_trials() -> list[FrozenTrial]:
    """Every state, special values, attributes of every JSON type, odd datetimes."""
    start = dt.datetime(2026, 3, 29, 1, 30, 0)  # around a DST change in many zones
    made = []
    for i, state in enumerate(STATES):
        params: dict[str, Any] = {
            "cell_type": [None, "gru", "lstm"][i % 3],
            "lr": 10 ** -(1 + i / 3),
        }
        if i % 2:
            params["layers"] = 1 + i % 3
        complete, waiting = state == TrialState.COMPLETE, state == TrialState.WAITING
        started = start + dt.timedelta(minutes=i, microseconds=i)
        made.append(
            FrozenTrial(
                number=i,
                trial_id=100 + i,
                state=state,
                value=None,
                values=[-math.inf if i % 2 else 0.25] if complete else None,
                datetime_start=None if waiting else started,
                datetime_complete=started + dt.timedelta(hours=1) if state.is_finished() else None,
                params=params,
                distributions={k: DISTS[k] for k in params},
                user_attrs={**ATTRS, "n": i},
                system_attrs={"fixed_params": {"lr": 0.01}} if waiting else {},
                intermediate_values=STEPS if i < 3 else {},
            )
        )
    return made


def same(a: FrozenTrial, b: FrozenTrial) -> bool:
    """Equal but for the trial id (the database's), NaN equal to NaN."""

    def key(t: FrozenTrial) -> Any:
        steps = {k: "nan" if math.isnan(v) else v for k, v in t.intermediate_values.items()}
        return (t.number, t.state, t.values, t.datetime_start, t.datetime_complete, t.params,
                list(t.params), t.distributions, t.user_attrs, t.system_attrs, steps)  # fmt: skip

    return key(a) == key(b)


def test_a_study_written_in_bulk_reads_back_as_written(db_url: str) -> None:
    optuna.storages.RDBStorage(db_url)  # Optuna's schema
    trials = varied_trials()
    rows = bulk_write.StudyRows(
        name="copy",
        directions=(optuna.study.StudyDirection.MAXIMIZE,),
        user_attrs={"task": "adding: seq_len=20"},
        system_attrs={"study:metric_names": ["validation MSE"], "other": {"a": [1, 2]}},
    )
    engine = create_engine(db_url)
    with engine.begin() as conn:
        study_id = bulk_write.insert_study(conn, rows)
        bulk_write.insert_trials(conn, study_id, list(reversed(trials)))
    with engine.connect() as conn:
        assert bulk_write.read_study(conn, study_id) == rows
        assert bulk_write.study_names(conn) == ["copy"]
        ours = bulk_read.read_trials(conn, study_id)
    theirs = optuna.load_study(study_name="copy", storage=db_url).get_trials()
    for read in (ours, theirs):
        assert len(read) == len(trials)
        assert all(same(a, b) for a, b in zip(read, trials, strict=True)), read
    with pytest.raises(IntegrityError), engine.begin() as conn:
        bulk_write.insert_study(conn, rows)  # Optuna's unique name
    engine.dispose()


def test_trials_must_be_numbered_from_zero(sqlite_url: str) -> None:
    optuna.storages.RDBStorage(sqlite_url)
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        rows = bulk_write.StudyRows("gap", (optuna.study.StudyDirection.MINIMIZE,))
        study_id = bulk_write.insert_study(conn, rows)
        with pytest.raises(ValueError, match="numbered"):
            bulk_write.insert_trials(conn, study_id, varied_trials()[1:])
    engine.dispose()
