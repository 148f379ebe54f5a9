"""The worker loop against real storage: exact budgets, recovery, outcomes."""

from __future__ import annotations

import time
from typing import Any

import optuna
import pytest
import torch

from cellsearch.search import objective
from cellsearch.search.outcomes import is_counted
from cellsearch.search.spec import parse_spec
from cellsearch.search.trainer import TrainingDiverged
from cellsearch.search.worker import Worker
from cellsearch.service.db import engine_for, optuna_storage
from cellsearch.service.queue import SqlStudyQueue
from cellsearch.service.studies import create_study, get_study
from tests.search.test_spec import spec_data

TINY = {
    "task": {"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32},
    "space": {"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8}},
    "budget": {"n_trials": 4, "max_epochs": 2},
    "pruner": "none",
}
RECORDED = ("cell_type", "param_count", "device", "seconds", "epochs_run",
            "samples_per_second", "best_epoch", "test_metric", "test_metric_name")  # fmt: skip


def make_study(settings: Any, **overrides: Any) -> optuna.Study:
    spec = parse_spec(spec_data(**{**TINY, **overrides}))
    create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
    return optuna.load_study(study_name=spec.name, storage=optuna_storage(settings))


def make_worker(settings: Any) -> tuple[Worker, SqlStudyQueue]:
    queue = SqlStudyQueue(engine_for(settings), grace_period=settings.grace_period)
    return Worker(optuna_storage(settings), queue, device=torch.device("cpu"),
                  poll_interval=0.01), queue  # fmt: skip


def drain(worker: Worker) -> int:
    ran = 0
    while worker.step() is not None:
        ran += 1
    return ran


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if is_counted(t)]


def test_runs_exactly_n_trials_balanced_and_records_everything(migrated: Any) -> None:
    study = make_study(migrated)
    worker, _ = make_worker(migrated)
    assert drain(worker) == 4
    trials = counted(study)
    assert len(trials) == 4 == len(study.trials)
    cells = sorted(t.params["cell_type"] for t in trials)
    assert cells == ["gru", "gru", "lstm", "lstm"]
    for t in trials:
        assert all(t.user_attrs.get(k) is not None for k in RECORDED), t.user_attrs
        assert t.user_attrs["device"] == "cpu"
        assert t.user_attrs["epochs_run"] == 2 and len(t.intermediate_values) == 2
    record = get_study(engine=engine_for(migrated), name="adding-t20")
    assert (record.status, record.claimed) == ("completed", 4)
    assert worker.step() is None


def test_stale_trial_is_failed_requeued_and_budget_stays_exact(migrated: Any) -> None:
    study = make_study(migrated)
    worker, queue = make_worker(migrated)
    claim = queue.claim()  # a worker that dies right after starting its trial
    assert claim is not None
    dists = optuna.distributions
    dead = study.ask(
        {
            "cell_type": dists.CategoricalDistribution(["lstm", "gru"]),
            "learning_rate": dists.FloatDistribution(1e-4, 0.1, log=True),
        }
    )
    optuna_storage(migrated).record_heartbeat(dead._trial_id)
    assert worker.recover_stale(force=True) == 0  # still within the grace period
    time.sleep(migrated.grace_period + 1.5)
    assert worker.recover_stale(force=True) == 1
    assert worker.recover_stale(force=True) == 0  # only once
    failed = study.trials[dead.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["failure_kind"] == "stale"
    assert drain(worker) == 4
    trials = counted(study)
    assert len(trials) == 4
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert retry.params["cell_type"] == dead.params["cell_type"]
    assert retry.params["learning_rate"] == dead.params["learning_rate"]


def test_pause_interrupts_after_the_epoch_and_requeues(
    migrated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated)
    worker, queue = make_worker(migrated)
    statuses = iter(["paused"])
    real_status = queue.status
    monkeypatch.setattr(queue, "status", lambda name: next(statuses, None) or real_status(name))
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "interrupted"
    first = study.trials[0]
    assert len(first.intermediate_values) == 1  # stopped after its first epoch
    assert first.user_attrs["failure_kind"] == "interrupted"
    assert get_study(engine=engine_for(migrated), name="adding-t20").claimed == 0
    assert drain(worker) == 4
    assert len(counted(study)) == 4
    assert any(t.user_attrs.get("retry_of") == 0 for t in counted(study))


def test_cancelled_study_is_not_requeued(migrated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    study = make_study(migrated)
    worker, queue = make_worker(migrated)
    from cellsearch.service.studies import change_status

    def cancel_then_report(name: str) -> str | None:
        if SqlStudyQueue.status(queue, name) == "running":
            change_status(engine=engine_for(migrated), name=name, action="cancel")
        return SqlStudyQueue.status(queue, name)

    monkeypatch.setattr(queue, "status", cancel_then_report)
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "interrupted"
    assert study.get_trials(states=(optuna.trial.TrialState.WAITING,)) == []
    assert worker.step() is None


@pytest.mark.parametrize(
    ("error", "kind"),
    [(TrainingDiverged(1, "train loss is nan at epoch 1"), "diverged"),
     (RuntimeError("CUDA out of memory"), "error")],
)  # fmt: skip
def test_model_failures_are_outcomes_that_count(
    migrated: Any, monkeypatch: pytest.MonkeyPatch, error: Exception, kind: str
) -> None:
    def failing_train(*_args: Any, **_kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(objective, "train", failing_train)
    study = make_study(migrated)
    worker, _ = make_worker(migrated)
    assert drain(worker) == 4
    trials = study.trials
    assert len(trials) == 4
    assert {t.user_attrs["failure_kind"] for t in trials} == {kind}
    assert str(error) in trials[0].user_attrs["failure_reason"]
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "completed"


def test_paused_study_is_not_claimed_until_resumed(migrated: Any) -> None:
    from cellsearch.service.studies import change_status

    make_study(migrated)
    worker, _ = make_worker(migrated)
    change_status(engine=engine_for(migrated), name="adding-t20", action="pause")
    assert worker.step() is None
    change_status(engine=engine_for(migrated), name="adding-t20", action="resume")
    assert worker.step() is not None


def test_lost_unit_is_reclaimed_after_the_grace_period(migrated: Any) -> None:
    study = make_study(migrated, budget={"n_trials": 2, "max_epochs": 1})
    worker, queue = make_worker(migrated)
    assert queue.claim() is not None  # claimed, then the worker died before `ask`
    assert drain(worker) == 1
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "running"
    time.sleep(migrated.grace_period + 0.5)
    worker.recover_stale(force=True)
    assert drain(worker) == 1
    assert len(counted(study)) == 2
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "completed"


def test_worker_registry_heartbeat(migrated: Any) -> None:
    make_study(migrated, budget={"n_trials": 1, "max_epochs": 1})
    worker, queue = make_worker(migrated)
    ran = worker.run(max_trials=1)
    assert ran == 1
    from sqlalchemy import select

    from cellsearch.service.db import session_scope
    from cellsearch.service.tables import WorkerRecord

    with session_scope(engine_for(migrated)) as session:  # retired on a clean exit
        assert session.scalars(select(WorkerRecord)).all() == []
    queue.beat(worker.info)
    with session_scope(engine_for(migrated)) as session:
        (row,) = session.scalars(select(WorkerRecord)).all()
        assert (row.worker_id, row.device) == (worker.info.worker_id, "cpu")


def test_param_budget_gives_every_cell_about_the_same_size(migrated: Any) -> None:
    study = make_study(
        migrated,
        space={"cell_type": ["lstm", "gru", "rnn_tanh", "mgu"]},
        param_budget=3000,
        budget={"n_trials": 4, "max_epochs": 1},
    )
    worker, _ = make_worker(migrated)
    assert drain(worker) == 4
    sizes = {t.params["cell_type"]: t.user_attrs["param_count"] for t in study.trials}
    assert set(sizes) == {"lstm", "gru", "rnn_tanh", "mgu"}
    assert all(abs(n - 3000) <= 0.05 * 3000 for n in sizes.values()), sizes
    hidden = {t.params["cell_type"]: t.user_attrs["hidden_size"] for t in study.trials}
    assert hidden["rnn_tanh"] > hidden["gru"] > hidden["lstm"]  # solved per cell
    assert all("hidden_size" not in t.params for t in study.trials)
