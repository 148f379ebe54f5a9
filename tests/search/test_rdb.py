"""Batched writes to Optuna's RDB storage, on SQLite and a real PostgreSQL."""

from __future__ import annotations

import optuna
import pytest

from cellsearch.search.trial.optuna_rdb import (
    batch_capable,
    record_attrs,
    running_without_heartbeat,
)


def rdb_study(url: str) -> tuple[optuna.Study, optuna.storages.RDBStorage]:
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=2)
    return optuna.create_study(storage=storage), storage


def test_attributes_are_stored_updated_and_visible_on_the_trial(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    assert batch_capable(storage)
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
        record_attrs(trial, {}, heartbeat=True)
    assert study.trials[0].user_attrs == {}


def test_heartbeat_is_recorded_and_refreshed_with_the_attributes(db_url: str) -> None:
    study, storage = rdb_study(db_url)
    silent, beating = study.ask(), study.ask()
    assert running_without_heartbeat(storage, study._study_id) == {
        silent._trial_id,
        beating._trial_id,
    }
    record_attrs(beating, {"x": 1}, heartbeat=True)
    record_attrs(beating, {}, heartbeat=True)  # the second beat updates the one row
    assert running_without_heartbeat(storage, study._study_id) == {silent._trial_id}
    assert storage._get_stale_trial_ids(study._study_id) == []  # fresh heartbeat
    study.tell(silent, 0.0)
    assert running_without_heartbeat(storage, study._study_id) == set()  # finished
