"""Recording trial attributes: one transaction on RDB storage, the public path elsewhere."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from cellsearch.search.objective import _set_attrs


@pytest.mark.parametrize("rdb", [True, False])
def test_attributes_are_stored_and_visible_on_the_trial(tmp_path: Path, rdb: bool) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/a.db") if rdb else None
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    _set_attrs(trial, {"a": 1, "b": [1, 2], "c": None})
    _set_attrs(trial, {"a": 2})  # an update, not a second row
    assert trial.user_attrs == {"a": 2, "b": [1, 2], "c": None}
    study.tell(trial, 0.5)
    assert study.trials[0].user_attrs == {"a": 2, "b": [1, 2], "c": None}


def test_finished_trials_refuse_new_attributes(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/a.db")
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        _set_attrs(trial, {"late": 1})
