"""The worker loop against real storage: exact budgets, recovery, outcomes."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import optuna
import pytest
import torch
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from cellsearch.search.errors import TrainingDiverged
from cellsearch.search.optuna_adapter import running_heartbeats
from cellsearch.search.record import is_counted
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.trial import objective
from cellsearch.search.worker.loop import REGISTRY_MIN_GAP, Worker
from cellsearch.search.worker.protocol import Finished, WorkerInfo
from cellsearch.search.worker.recovery import requeue_pending, settle
from cellsearch.service.errors import StorageUnavailable
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage, session_scope
from cellsearch.service.store.tables import WorkerRecord
from cellsearch.service.studies.operations import (
    change_status,
    create_study,
    delete_study,
    get_study,
)
from cellsearch.service.workers.ledger import SqlStudyLedger
from cellsearch.service.workers.runner import sql_backend
from tests.search.test_spec import spec_data

TINY = {
    "task": {"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32},
    "space": {"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8}},
    "budget": {"n_trials": 4, "max_epochs": 2},
    "pruner": "none",
}
RECORDED = ("cell_type", "param_count", "device", "seconds", "epochs_run",
            "samples_per_second", "best_epoch", "test_metric", "test_metric_name")  # fmt: skip


def make_study(settings: Settings, **overrides: Any) -> optuna.Study:
    spec = parse_spec(spec_data(**{**TINY, **overrides}))
    create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
    return optuna.load_study(study_name=spec.name, storage=optuna_storage(settings))


def make_worker(settings: Settings, **options: Any) -> tuple[Worker, SqlStudyLedger]:
    backend = sql_backend(engine_for(settings), grace_period=settings.grace_period)
    options = {"device": torch.device("cpu"), "poll_interval": 0.01, **options}
    worker = Worker(optuna_storage(settings), backend, **options)
    assert isinstance(backend.ledger, SqlStudyLedger)
    return worker, backend.ledger


def drain(worker: Worker) -> int:
    ran = 0
    while worker.step() is not None:
        ran += 1
    return ran


def counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials() if is_counted(t)]


def test_runs_exactly_n_trials_balanced_and_records_everything(migrated: Settings) -> None:
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
        assert t.user_attrs["draw"] == "random"  # 2 per cell: within TPE's start-up
    record = get_study(engine=engine_for(migrated), name="adding-t20")
    assert (record.status, record.claimed) == ("completed", 4)
    assert worker.step() is None


def test_stale_trial_is_failed_requeued_and_budget_stays_exact(migrated: Settings) -> None:
    study = make_study(migrated)
    worker, ledger = make_worker(migrated)
    claim = ledger.claim()  # a worker that dies right after starting its trial
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


def test_trial_without_any_heartbeat_is_failed_after_the_grace_period(migrated: Settings) -> None:
    # A worker killed between `ask` and its trial's first heartbeat leaves a running trial
    # that Optuna's own stale check never sees; the worker watches such trials itself.
    study = make_study(migrated)
    worker, ledger = make_worker(migrated)
    assert ledger.claim() is not None
    cells = optuna.distributions.CategoricalDistribution(["lstm", "gru"])
    dead = study.ask({"cell_type": cells})
    assert worker.recover_stale(force=True) == 0  # first seen now
    time.sleep(migrated.grace_period / 2)
    assert worker.recover_stale(force=True) == 0  # silent, but not yet for the grace period
    other, _ = make_worker(migrated)
    assert other.recover_stale(force=True) == 0  # a new observer starts its own clock
    time.sleep(migrated.grace_period / 2 + 0.5)
    assert worker.recover_stale(force=True) == 1
    failed = study.trials[dead.number]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["failure_kind"] == "stale"
    assert drain(worker) == 4
    assert len(counted(study)) == 4
    (retry,) = [t for t in counted(study) if t.user_attrs.get("retry_of") == dead.number]
    assert retry.params["cell_type"] == dead.params["cell_type"]


def test_a_trial_that_writes_a_heartbeat_is_not_watched_as_silent(migrated: Settings) -> None:
    study = make_study(migrated)
    worker, _ = make_worker(migrated)
    alive = study.ask()
    assert worker.recover_stale(force=True) == 0
    for _ in range(4):  # beats faster than the grace period
        time.sleep(migrated.grace_period / 3)
        optuna_storage(migrated).record_heartbeat(alive._trial_id)
        assert worker.recover_stale(force=True) == 0
    assert study.trials[alive.number].state == optuna.trial.TrialState.RUNNING


def test_long_trial_records_its_attributes_and_heartbeat_while_running(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Static attributes wait for the first heartbeat (one interval), then appear on the
    # running trial with it; the registry names the trial.
    study = make_study(migrated, budget={"n_trials": 1, "max_epochs": 2})
    worker, ledger = make_worker(migrated)
    seen: list[tuple[dict[str, Any], set[int], str | None]] = []
    real_status = ledger.status

    def slow_status(name: str) -> str | None:
        time.sleep(migrated.heartbeat_interval * 2.5)  # an epoch longer than the interval
        (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        silent = running_heartbeats(
            optuna_storage(migrated), study._study_id, [running._trial_id]
        ).silent
        with session_scope(engine_for(migrated)) as session:
            named = session.scalars(select(WorkerRecord.study_name)).first()
        seen.append((running.user_attrs, silent, named))
        return real_status(name)

    monkeypatch.setattr(ledger, "status", slow_status)
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "complete"
    attrs, silent, named = seen[0]
    assert attrs["cell_type"] in ("lstm", "gru") and attrs["param_count"] > 0
    assert silent == set() and named == "adding-t20"
    assert study.trials[0].user_attrs["param_count"] == attrs["param_count"]


def test_short_trials_write_the_registry_about_once_a_second(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_study(migrated, budget={"n_trials": 6, "max_epochs": 1})
    worker, _ = make_worker(migrated)
    registry = worker.backend.registry
    beats: list[int | None] = []
    real_beat = registry.beat

    def beat(info: WorkerInfo) -> int:
        beats.append(info.trial_number)
        return real_beat(info)

    monkeypatch.setattr(registry, "beat", beat)
    started = time.monotonic()
    assert drain(worker) == 6
    elapsed = time.monotonic() - started
    assert beats[0] == 0  # the first trial is named at once
    assert 1 <= len(beats) <= 2 + elapsed / REGISTRY_MIN_GAP


def test_study_made_again_under_the_same_name_gets_its_own_task_and_trials(
    migrated: Settings,
) -> None:
    # (SQLite may give the new Optuna study the old one's id.)
    make_study(migrated, budget={"n_trials": 1, "max_epochs": 1})
    worker, _ = make_worker(migrated)
    assert drain(worker) == 1
    delete_study(engine=engine_for(migrated), storage=optuna_storage(migrated),
                 name="adding-t20")  # fmt: skip
    task = {"kind": "adding", "seq_len": 5, "n_train": 16, "n_val": 8, "n_test": 8}
    again = make_study(migrated, task=task, budget={"n_trials": 2, "max_epochs": 1})
    worker.recover_stale(force=True)  # looks the study up by name, as a claim does
    assert drain(worker) == 2
    assert len(counted(again)) == 2 == len(again.trials)
    (data,) = [d for key, d in worker._data.items() if '"seq_len":5' in key[0]]
    assert data.train.x.shape[1] == 5


def test_pause_interrupts_after_the_epoch_and_requeues(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated)
    worker, ledger = make_worker(migrated)
    statuses = iter(["paused"])
    real_status = ledger.status
    monkeypatch.setattr(ledger, "status", lambda name: next(statuses, None) or real_status(name))
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "interrupted"
    first = study.trials[0]
    assert len(first.intermediate_values) == 1  # stopped after its first epoch
    assert first.user_attrs["failure_kind"] == "interrupted"
    assert get_study(engine=engine_for(migrated), name="adding-t20").claimed == 0
    assert drain(worker) == 4
    assert len(counted(study)) == 4
    (copy,) = [t for t in counted(study) if t.user_attrs.get("retry_of") == 0]
    assert copy.user_attrs["draw"] == first.user_attrs["draw"] == "random"  # the same draw


def test_pause_during_the_last_epoch_lets_the_trial_finish(migrated: Settings) -> None:
    # Requeueing a trial that has trained all its epochs would throw finished work away.
    study = make_study(migrated, budget={"n_trials": 4, "max_epochs": 1})
    worker, ledger = make_worker(migrated)
    claim = ledger.claim

    def claim_then_pause() -> Any:
        taken = claim()
        if taken is not None:
            change_status(engine=engine_for(migrated), name="adding-t20", action="pause")
        return taken

    ledger.claim = claim_then_pause  # type: ignore[method-assign]
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "complete"
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    record = get_study(engine=engine_for(migrated), name="adding-t20")
    assert (record.status, record.claimed) == ("paused", 1)
    assert worker.step() is None  # and nothing more until resumed


def outage(calls: int) -> Any:
    """A storage method that fails ``calls`` times as if the server were down, then works."""
    left = [calls]

    def wrap(real: Any) -> Any:
        def method(*args: Any, **kwargs: Any) -> Any:
            if left[0] > 0:
                left[0] -= 1
                cause = OperationalError("UPDATE", {}, Exception("connection refused"))
                raise optuna.exceptions.StorageInternalError("commit failed") from cause
            return real(*args, **kwargs)

        return method

    return wrap


def test_trial_rides_out_a_database_outage(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A restart of the database while a trial trains: its reports, lifecycle checks and
    # outcome are retried; the trial completes, nothing is recorded as a model error.
    study = make_study(migrated, budget={"n_trials": 1, "max_epochs": 3})
    worker, ledger = make_worker(migrated)
    cached = optuna.storages._cached_storage._CachedStorage
    monkeypatch.setattr(cached, "set_trial_intermediate_value",
                        outage(2)(cached.set_trial_intermediate_value))  # fmt: skip
    monkeypatch.setattr(cached, "set_trial_state_values",
                        outage(1)(cached.set_trial_state_values))  # fmt: skip
    real_status = ledger.status
    down = iter([True])

    def status(name: str) -> str | None:
        if next(down, False):
            raise StorageUnavailable("database error") from OperationalError(
                "SELECT", {}, Exception("the database system is starting up")
            )
        return real_status(name)

    monkeypatch.setattr(ledger, "status", status)
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "complete"
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3]
    assert "failure_kind" not in trial.user_attrs


def test_an_outage_longer_than_the_patience_is_not_a_model_error(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated, budget={"n_trials": 1, "max_epochs": 2})
    worker, _ = make_worker(migrated)
    worker.patience = 0.3
    cached = optuna.storages._cached_storage._CachedStorage
    monkeypatch.setattr(cached, "set_trial_intermediate_value",
                        outage(1000)(cached.set_trial_intermediate_value))  # fmt: skip
    with pytest.raises(optuna.exceptions.StorageInternalError):
        worker.step()  # the run loop logs it and carries on
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.RUNNING  # left to the stale check
    assert "failure_kind" not in trial.user_attrs


def test_trial_failed_as_stale_while_it_trains_is_given_up(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its heartbeats stopped (a long outage, a frozen host) and another worker failed and
    # requeued it; the owner then discards its result instead of telling or requeueing.
    study = make_study(migrated, budget={"n_trials": 2, "max_epochs": 2})
    worker, ledger = make_worker(migrated)
    other, _ = make_worker(migrated)
    real_status = ledger.status

    def status_after_a_stale_check(name: str) -> str | None:
        (running,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
        assert other.stale._fail(study, running._trial_id)
        return real_status(name)

    monkeypatch.setattr(ledger, "status", status_after_a_stale_check)
    outcome = worker.step()
    assert outcome is not None and outcome.outcome == "stale"
    monkeypatch.setattr(ledger, "status", real_status)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert len(waiting) == 1  # requeued once, by the worker that failed it
    assert drain(worker) == 2
    assert len(counted(study)) == 2
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "completed"


def test_cancelled_study_is_not_requeued(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = make_study(migrated)
    worker, ledger = make_worker(migrated)

    def cancel_then_report(name: str) -> str | None:
        if SqlStudyLedger.status(ledger, name) == "running":
            change_status(engine=engine_for(migrated), name=name, action="cancel")
        return SqlStudyLedger.status(ledger, name)

    monkeypatch.setattr(ledger, "status", cancel_then_report)
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
    migrated: Settings, monkeypatch: pytest.MonkeyPatch, error: Exception, kind: str
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


def test_paused_study_is_not_claimed_until_resumed(migrated: Settings) -> None:
    make_study(migrated)
    worker, _ = make_worker(migrated)
    change_status(engine=engine_for(migrated), name="adding-t20", action="pause")
    assert worker.step() is None
    change_status(engine=engine_for(migrated), name="adding-t20", action="resume")
    assert worker.step() is not None


def test_lost_unit_is_reclaimed_after_the_grace_period(migrated: Settings) -> None:
    study = make_study(migrated, budget={"n_trials": 2, "max_epochs": 1})
    worker, ledger = make_worker(migrated)
    assert ledger.claim() is not None  # claimed, then the worker died before `ask`
    assert drain(worker) == 1
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "running"
    time.sleep(migrated.grace_period + 0.5)
    worker.recover_stale(force=True)
    assert drain(worker) == 1
    assert len(counted(study)) == 2
    assert get_study(engine=engine_for(migrated), name="adding-t20").status == "completed"


def claimed_and_reclaims(settings: Settings) -> tuple[int, int]:
    record = get_study(engine=engine_for(settings), name="adding-t20")
    return record.claimed, record.reclaims


def _one_done_one_dying(
    settings: Settings,
) -> tuple[optuna.Study, Worker, SqlStudyLedger, optuna.Trial]:
    """A study of 2 trials: one finished by a worker, a second claimed and asked by a
    worker that then dies mid-trial."""
    study = make_study(settings, budget={"n_trials": 2, "max_epochs": 1})
    worker, ledger = make_worker(settings)
    assert worker.step() is not None  # one trial done: claimed 1
    assert ledger.claim() is not None  # a second unit, whose worker then dies mid-trial
    cells = optuna.distributions.CategoricalDistribution(["lstm", "gru"])
    return study, worker, ledger, study.ask({"cell_type": cells})


def test_a_release_after_a_reclaim_does_not_free_the_unit_twice(migrated: Settings) -> None:
    # A stale trial is failed and requeued; before its worker gives the unit back, another
    # worker's settle sees no running trial and reclaims that unit. The late release must
    # then do nothing, or the budget would overshoot by one (seen once in CI, 25 of 24).
    study, worker, ledger, dead = _one_done_one_dying(migrated)
    reclaims = ledger.reclaims("adding-t20")  # read by the stale handler, trial running
    storage = optuna_storage(migrated)
    storage.set_trial_user_attr(dead._trial_id, "failure_kind", "stale")
    storage.set_trial_state_values(dead._trial_id, state=optuna.trial.TrialState.FAIL)
    objective.requeue(study, dead, "stale")
    time.sleep(migrated.grace_period + 0.5)
    spec = parse_spec(spec_data(**TINY))
    settle(worker.ledger, study, spec, grace_period=migrated.grace_period)  # reclaims the unit
    assert claimed_and_reclaims(migrated) == (1, 1)
    assert reclaims is not None
    ledger.release("adding-t20", reclaims)  # the stale handler's late release: void
    assert claimed_and_reclaims(migrated) == (1, 1)
    assert drain(worker) == 1  # the requeued trial, and nothing more
    assert len(counted(study)) == 2
    assert claimed_and_reclaims(migrated) == (2, 1)


def test_no_reclaim_between_failing_a_stale_trial_and_enqueuing_its_copy(
    migrated: Settings,
) -> None:
    """The stale handler fails a trial, then enqueues its copy; a reclaim in between would
    hand the unit to a new trial and leave the copy waiting once the budget is used."""
    study, worker, ledger, dead = _one_done_one_dying(migrated)
    time.sleep(migrated.grace_period + 0.5)  # the claim is old: a reclaim may apply
    storage = optuna_storage(migrated)
    storage.set_trial_user_attr(dead._trial_id, "failure_kind", "stale")
    storage.set_trial_state_values(dead._trial_id, state=optuna.trial.TrialState.FAIL)
    spec = parse_spec(spec_data(**TINY))
    settle(worker.ledger, study, spec, grace_period=migrated.grace_period)  # copy not there
    assert claimed_and_reclaims(migrated) == (2, 0)  # no reclaim: the unit waits for it
    objective.requeue(study, dead, "stale")
    settle(worker.ledger, study, spec, grace_period=migrated.grace_period)
    assert claimed_and_reclaims(migrated) == (1, 1)  # the copy is there: its unit is freed
    assert drain(worker) == 1  # the copy runs, and nothing else
    states = [t.state for t in study.get_trials()]
    assert len(counted(study)) == 2 and optuna.trial.TrialState.WAITING not in states
    assert ledger.status("adding-t20") == "completed"


def test_a_requeue_whose_copy_never_came_is_settled_after_the_grace_period() -> None:
    def failed(number: int, at: datetime, kind: str = "stale") -> optuna.trial.FrozenTrial:
        return optuna.trial.FrozenTrial(
            number=number, state=optuna.trial.TrialState.FAIL, value=None,
            datetime_start=at, datetime_complete=at, params={}, distributions={},
            user_attrs={"failure_kind": kind}, system_attrs={}, intermediate_values={},
            trial_id=number,
        )  # fmt: skip

    now = datetime(2026, 1, 1, 12, 0, 0)
    recent, old = now - timedelta(seconds=1), now - timedelta(seconds=10)
    assert requeue_pending([failed(0, recent)], 3.0, now)
    assert requeue_pending([failed(0, recent, "interrupted")], 3.0, now)
    assert not requeue_pending([failed(0, old)], 3.0, now)  # its worker died before the copy
    assert not requeue_pending([failed(0, recent, "diverged")], 3.0, now)  # counted, no copy
    waiting = optuna.trial.TrialState.WAITING
    copy = optuna.trial.create_trial(state=waiting, user_attrs={"retry_of": 0})
    assert not requeue_pending([failed(0, recent), copy], 3.0, now)


def test_two_reclaims_from_one_reading_do_not_both_apply(migrated: Settings) -> None:
    study = make_study(migrated, budget={"n_trials": 2, "max_epochs": 1})
    worker, ledger = make_worker(migrated)
    assert worker.step() is not None
    assert ledger.claim() is not None  # a unit lost: its worker died before `ask`
    time.sleep(migrated.grace_period + 0.5)

    def finished_while_another_worker_reclaims_and_claims() -> Finished:
        ledger.settle("adding-t20", lambda: Finished(1))  # the other worker reclaims first ...
        assert claimed_and_reclaims(migrated) == (1, 1)
        assert ledger.claim() is not None  # ... and a third claims the freed unit
        return Finished(1)  # what this worker counted before all that

    ledger.settle("adding-t20", finished_while_another_worker_reclaims_and_claims)
    assert claimed_and_reclaims(migrated) == (2, 1)  # this stale reclaim did not apply
    assert len(counted(study)) == 1


def test_worker_registry_heartbeat(migrated: Settings) -> None:
    make_study(migrated, budget={"n_trials": 1, "max_epochs": 1})
    worker, _ = make_worker(migrated)
    ran = worker.run(max_trials=1)
    assert ran == 1
    with session_scope(engine_for(migrated)) as session:  # retired on a clean exit
        assert session.scalars(select(WorkerRecord)).all() == []
    worker.backend.registry.beat(worker.info)
    with session_scope(engine_for(migrated)) as session:
        (row,) = session.scalars(select(WorkerRecord)).all()
        assert (row.worker_id, row.device) == (worker.info.worker_id, "cpu")


@pytest.fixture
def torch_threads() -> Any:
    """Restore torch's process-wide thread count after a test that changes it."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_workers_on_one_machine_share_its_cpus(migrated: Settings, torch_threads: None) -> None:
    first, _ = make_worker(migrated)
    second, _ = make_worker(migrated)
    for worker in (first, second):
        worker._cpus = 4  # as if the machine (or the cgroup quota) gave 4 CPUs
    first._beat()
    assert first.size_threads() == 4  # alone so far
    second._beat()
    first._beat()
    assert first.size_threads() == second.size_threads() == 2
    with session_scope(engine_for(migrated)) as session:
        rows = session.scalars(select(WorkerRecord)).all()
        assert {row.machine for row in rows} == {first.info.machine}
    first._beat()
    assert [row.torch_threads for row in _registry(migrated)] == [2, 2]
    second.backend.registry.retire(second.info.worker_id)  # it left: the share grows back
    first._beat()
    assert first.size_threads() == 4


def test_fixed_thread_count_is_kept(migrated: Settings, torch_threads: None) -> None:
    fixed, _ = make_worker(migrated, torch_threads=1)
    other, _ = make_worker(migrated)
    other._beat()
    fixed._beat()
    assert fixed.size_threads() == 1 == torch.get_num_threads()


def test_a_dead_workers_row_stops_counting_after_the_grace_period(
    migrated: Settings, torch_threads: None
) -> None:
    alive, _ = make_worker(migrated)
    dead, _ = make_worker(migrated)
    alive._cpus = 4
    dead._beat()  # then killed: its row stays
    alive._beat()
    assert alive.size_threads() == 2
    time.sleep(migrated.grace_period + 0.5)
    alive._beat()
    assert alive.size_threads() == 4


def _registry(settings: Settings) -> list[WorkerRecord]:
    with session_scope(engine_for(settings)) as session:
        return list(session.scalars(select(WorkerRecord)))


def test_param_budget_gives_every_cell_about_the_same_size(migrated: Settings) -> None:
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


def test_an_idle_look_with_no_running_study_is_one_statement(migrated: Settings) -> None:
    """With no study running, the stale-trial check's read of running studies is the whole
    look: no claim is tried (the idle worker's transactions, benchmarks/WORKERS.md)."""
    from sqlalchemy import event

    worker, _ = make_worker(migrated)
    engine = engine_for(migrated)
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert worker.step() is None
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(seen) == 1 and seen[0].startswith("SELECT cellsearch_studies.name"), seen
    make_study(migrated)  # then a running study is claimed at the next look
    worker.recover_stale(force=True)  # (the check runs once per heartbeat interval)
    assert worker.step() is not None
