"""AdapterStorage's writes of a trial's life against Optuna's own RDBStorage.

The same calls, in the same order, on both storages (each on its own study of one
database): what each call returns or raises, and the trials read back by Optuna's own
storage afterwards, must be the same. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.optuna_adapter import AdapterStorage, _storage

FLOAT = FloatDistribution(0.0, 1.0)
INT = IntDistribution(0, 3)
CATEGORIES = CategoricalDistribution(["a", "b", None])
MISSING = 999_999


def _waiting(params: dict[str, Any]) -> FrozenTrial:
    return optuna.trial.create_trial(
        state=TrialState.WAITING,
        params=params,
        distributions={name: FLOAT for name in params},
    )


def _life(storage: optuna.storages.RDBStorage, name: str) -> tuple[list[Any], list[int]]:
    """A trial's life and its errors, call by call: what each returned or raised, and
    the ids of the trials made."""
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], name)
    a, b, c, d = (storage.create_new_trial(study_id) for _ in range(4))
    waiting = storage.create_new_trial(study_id, template_trial=_waiting({"x": 0.3}))
    calls: list[Callable[[], Any]] = [
        lambda: storage.set_trial_param(a, "x", 0.5, FLOAT),
        lambda: storage.set_trial_param(a, "x", 0.7, FLOAT),  # written already: ignored
        lambda: storage.set_trial_param(a, "cell", 1, CATEGORIES),
        lambda: storage.set_trial_param(b, "x", 1, INT),  # incompatible with a's: refused
        lambda: storage._set_trial_param(b, "x", 1, INT, FLOAT),  # the cache's path, refused
        lambda: storage._set_trial_param(b, "x", 0.25, FLOAT, FLOAT),
        lambda: storage.set_trial_param(b, "cell", 2, CATEGORIES),
        lambda: storage.set_trial_intermediate_value(a, 0, 1.5),
        lambda: storage.set_trial_intermediate_value(a, 0, 2.5),  # a step again: replaced
        lambda: storage.set_trial_intermediate_value(a, 1, float("nan")),
        lambda: storage.set_trial_intermediate_value(a, 2, float("inf")),
        lambda: storage.set_trial_intermediate_value(a, 3, float("-inf")),
        lambda: storage.set_trial_state_values(a, TrialState.RUNNING),  # not waiting: False
        lambda: storage.set_trial_state_values(waiting, TrialState.RUNNING),  # taken: True
        lambda: storage.set_trial_state_values(waiting, TrialState.RUNNING),  # again: False
        lambda: storage.set_trial_state_values(a, TrialState.COMPLETE, [0.125]),
        lambda: storage.set_trial_param(a, "y", 0.5, FLOAT),  # finished: refused
        lambda: storage.set_trial_param(a, "x", 1, INT),  # finished first, then incompatible
        lambda: storage.set_trial_intermediate_value(a, 9, 1.0),
        lambda: storage.set_trial_state_values(a, TrialState.FAIL),
        lambda: storage.set_trial_state_values(b, TrialState.PRUNED, [float("inf")]),
        lambda: storage.set_trial_state_values(c, TrialState.COMPLETE, [float("-inf")]),
        lambda: storage.set_trial_state_values(d, TrialState.FAIL),
        lambda: storage.set_trial_intermediate_value(waiting, 0, 0.5),
        lambda: storage.set_trial_state_values(waiting, TrialState.COMPLETE, [0.5]),
        lambda: storage.set_trial_param(MISSING, "x", 0.5, FLOAT),
        lambda: storage._set_trial_param(MISSING, "x", 0.5, FLOAT, FLOAT),
        lambda: storage.set_trial_intermediate_value(MISSING, 0, 1.0),
        lambda: storage.set_trial_state_values(MISSING, TrialState.COMPLETE, [1.0]),
        lambda: storage.get_trial(MISSING),
    ]
    outcomes: list[tuple[Any, ...]] = []
    for call in calls:
        try:
            outcomes.append(("returned", call()))
        except Exception as exc:
            outcomes.append(("raised", type(exc).__name__, str(exc)))
    return outcomes, [a, b, c, d, waiting]


def _same(mine: FrozenTrial, optunas: FrozenTrial) -> None:
    """Every field but the ids and the times, which differ between two studies' trials;
    those have to be set on both or on neither, and close."""
    for key, value in optunas.__dict__.items():
        if "datetime" in key:
            assert (mine.__dict__[key] is None) == (value is None), key
            if value is not None:
                assert abs((mine.__dict__[key] - value).total_seconds()) < 60, key
        elif key != "_trial_id":
            both = mine.__dict__[key], value
            assert repr(both[0]) == repr(both[1]), (mine.number, key)  # NaN equals NaN


def test_a_trials_writes_do_what_optunas_do(db_url: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    theirs = optuna.storages.RDBStorage(db_url)
    ours = AdapterStorage(db_url)
    expected, their_ids = _life(theirs, "optunas")
    outcomes, our_ids = _life(ours, "ours")
    assert outcomes == expected
    # the life went through every outcome it means to
    assert ("returned", True) in outcomes and ("returned", False) in outcomes
    raised = {outcome[1] for outcome in outcomes if outcome[0] == "raised"}
    assert raised == {"KeyError", "ValueError", "UpdateFinishedTrialError"}
    for mine, optunas in zip(our_ids, their_ids, strict=True):
        written = theirs.get_trial(mine)  # read back by Optuna's own code
        _same(written, theirs.get_trial(optunas))
        _same(ours.get_trial(mine), written)  # and by ours
    steps = theirs.get_trial(our_ids[0]).intermediate_values
    assert steps[0] == 2.5 and math.isnan(steps[1]) and steps[3] == -math.inf


def test_the_writes_take_no_orm_session(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite and PostgreSQL a trial's calls are the adapter's statements: Optuna's
    ORM session is never opened (it was most of a minimal trial's time); on another
    dialect every call is Optuna's own."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = AdapterStorage(db_url)
    study = optuna.create_study(storage=ours)
    opened: list[int] = []
    session = ours.scoped_session

    def counting() -> Any:
        opened.append(1)
        return session()

    monkeypatch.setattr(ours, "scoped_session", counting)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + _report(t), n_trials=3)
    assert opened == []
    monkeypatch.setattr(_storage, "_DIALECTS", ("mysql",))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + _report(t), n_trials=1)
    assert len(opened) >= 4  # the trial's creation, parameter, report, end and reads
    values = [t.value for t in optuna.load_study(study_name=study.study_name,
                                                  storage=db_url).trials]  # fmt: skip
    assert len(values) == 4 and all(v is not None and 0 <= v <= 1.5 for v in values)


def _report(trial: optuna.Trial) -> float:
    trial.report(0.5, 0)
    return 0.0


def test_a_database_error_is_optunas_storage_error(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing statement surfaces as Optuna's ``StorageInternalError``, raised from the
    database's error, as Optuna's own storage raises it (the worker's retries look
    through it for a lost connection)."""
    from sqlalchemy.exc import OperationalError

    ours = AdapterStorage(db_url)
    study_id = ours.create_new_study([StudyDirection.MINIMIZE], "broken")
    trial_id = ours.create_new_trial(study_id)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(ours.engine, "connect", broken)
    monkeypatch.setattr(ours.engine, "begin", broken)
    for call in (
        lambda: ours.get_trial(trial_id),
        lambda: ours.set_trial_param(trial_id, "x", 0.5, FLOAT),
        lambda: ours.set_trial_intermediate_value(trial_id, 0, 1.0),
        lambda: ours.set_trial_state_values(trial_id, TrialState.COMPLETE, [1.0]),
    ):
        with pytest.raises(optuna.exceptions.StorageInternalError) as raised:
            call()
        assert isinstance(raised.value.__cause__, OperationalError)
