"""One trial: sample a configuration, build the model, train it, tell Optuna.

Outcomes and how they are recorded (``failure_kind`` is a trial user attribute):

========================  ===========  ===============  ==========================
what happened             state        failure_kind     counts toward ``n_trials``
========================  ===========  ===============  ==========================
trained to the end        COMPLETE     -                yes
pruned                    PRUNED       -                yes
loss became NaN or inf    FAIL         ``diverged``     yes (an outcome of the model)
exception while training  FAIL         ``error``        yes
stopped (pause, SIGTERM)  FAIL         ``interrupted``  no: its parameters are requeued
worker died (heartbeat)   FAIL         ``stale``        no: its parameters are requeued
========================  ===========  ===============  ==========================
"""

from __future__ import annotations

import functools
import logging
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
import torch

import cellsearch
from cellsearch.models import SequenceModel, count_parameters
from cellsearch.search import retry
from cellsearch.search.rdb import record_attrs
from cellsearch.search.samplers import trial_seed
from cellsearch.search.space import TrialConfig, suggest_config
from cellsearch.search.spec import StudySpec
from cellsearch.search.tasks import TaskData
from cellsearch.search.trainer import EpochResult, TrainConfig, TrainingDiverged, TrainResult, train

log = logging.getLogger(__name__)

Outcome = Literal["complete", "pruned", "diverged", "error", "interrupted", "stale"]
PRUNED = optuna.trial.TrialState.PRUNED


@dataclass(frozen=True)
class TrialOutcome:
    """What :func:`run_trial` did with a trial."""

    number: int
    outcome: Outcome
    value: float | None = None
    reason: str | None = None


def requeue(study: optuna.Study, params: dict[str, Any], number: int, reason: str) -> None:
    """Enqueue the parameters of trial ``number`` again so that a worker re-runs them."""
    study.enqueue_trial(
        params, user_attrs={"retry_of": number, "retry_reason": reason}, skip_if_exists=False
    )


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    spec: StudySpec,
    data: TaskData,
    device: torch.device,
    should_continue: Callable[[], bool],
    *,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    patience: float = 0.0,
) -> TrialOutcome:
    """Train one trial of ``study`` to an outcome and tell Optuna.

    Args:
        study: The Optuna study the trial belongs to.
        trial: A trial returned by ``study.ask()``.
        spec: The study spec.
        data: The task's tensors.
        device: Where to train.
        should_continue: Called after every epoch but the last; ``False`` interrupts the
            trial (pause, cancel, SIGTERM), which is then requeued unless cancelled. After
            the last epoch the trial is finished whatever it says.
        on_start: Receives the trial's static attributes (cell type, hidden size,
            parameter count...) once the model is built, instead of their being written
            at once; they are written with the trial's outcome in any case. The worker
            passes them to its heartbeat thread, which writes them with the first
            heartbeat, so a trial shorter than the heartbeat interval costs one
            transaction fewer.
        patience: Seconds for which each storage call of the trial (sampling, reports,
            pruning and lifecycle checks, the outcome) is retried while the database is
            unreachable (:func:`cellsearch.search.retry.retrying`). A storage error that
            outlasts it is raised, never recorded as the trial's outcome: the trial stays
            running and, once its heartbeats have stopped for the grace period, is
            requeued by a worker.
    """
    storage = retry.for_trial(trial.number, patience)
    try:
        config = storage(
            lambda: suggest_config(
                trial, spec, input_size=data.input_size, output_size=data.output_size
            ),
            "sampling",
        )
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)
    seed = trial_seed(spec.seed, 1_000_000 + trial.number)
    torch.manual_seed(seed)
    model = SequenceModel(
        cell=config.cell_type,
        input_size=data.input_size,
        hidden_size=config.hidden_size,
        num_layers=config.num_layers,
        dropout=config.dropout,
        output_size=data.output_size,
        head=data.head,
        cell_options=config.cell_options,
    )
    static = _static_attrs(config, model, device, seed)
    if on_start is None:
        storage(lambda: record_attrs(trial, static), "attributes")
    else:
        on_start(static)
    interrupted = False

    def on_epoch(epoch: EpochResult) -> bool:
        nonlocal interrupted
        value = _objective_value(spec, epoch.val_loss, epoch.val_metric)
        storage(lambda: trial.report(value, epoch.epoch), "report")
        if storage(trial.should_prune, "pruning check"):
            return False
        if epoch.epoch >= spec.budget.max_epochs:
            return True  # the trial is done: finish it rather than requeue finished work
        if not storage(should_continue, "status check"):
            interrupted = True
            return False
        return True

    finish = functools.partial(_finish, study, trial, storage)
    try:
        result = train(model.to(device), data, _train_config(spec, config, seed), device, on_epoch)
    except TrainingDiverged as exc:
        return finish("diverged", str(exc), static)
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)  # another worker failed it as stale while it trained
    except Exception as exc:
        if retry.is_transient(exc):
            raise  # the database, not the model: never a recorded outcome
        log.warning("trial %d failed: %s", trial.number, traceback.format_exc())
        return finish("error", f"{type(exc).__name__}: {exc}", static)  # a bug, out of memory
    attrs = {**static, **_result_attrs(result, data)}
    if interrupted:
        return finish("interrupted", "stopped by the worker (pause, cancel or exit)", attrs)
    if result.stop_reason == "stopped":  # the pruner asked to stop
        return finish("pruned", None, attrs)
    return finish("complete", None, attrs, _objective_value(spec, result.best_val_loss,
                                                            result.best_val_metric))  # fmt: skip


def _objective_value(spec: StudySpec, val_loss: float, val_metric: float) -> float:
    return val_loss if spec.objective.metric == "val_loss" else val_metric


def _train_config(spec: StudySpec, config: TrialConfig, seed: int) -> TrainConfig:
    return TrainConfig(
        learning_rate=config.learning_rate,
        batch_size=config.batch_size,
        max_epochs=spec.budget.max_epochs,
        optimizer=config.optimizer,  # type: ignore[arg-type]  # validated by the spec
        weight_decay=config.weight_decay,
        grad_clip=config.grad_clip or None,
        max_seconds=spec.budget.max_trial_seconds,
        seed=seed,
    )


def _static_attrs(
    config: TrialConfig, model: torch.nn.Module, device: torch.device, seed: int
) -> dict[str, Any]:
    return {
        "cell_type": config.cell_type,
        "hidden_size": config.hidden_size,
        "num_layers": config.num_layers,
        "cell_options": config.cell_options,
        "param_count": count_parameters(model),
        "device": str(device),
        "seed": seed,
        "torch_version": torch.__version__,
        "cellsearch_version": cellsearch.__version__,
    }


def _result_attrs(result: TrainResult, data: TaskData) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "seconds": result.seconds,
        "seconds_per_epoch": result.seconds_per_epoch,
        "epochs_run": result.epochs_run,
        "samples_per_second": result.samples_per_second,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "test_loss": result.test_loss,
        "test_metric": result.test_metric,
        "test_metric_name": data.metric,
        "stop_reason": result.stop_reason,
        "peak_memory_bytes": result.peak_memory_bytes,  # CUDA only, else None
    }
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in attrs.items()
    }


def _finish(
    study: optuna.Study,
    trial: optuna.Trial,
    storage: Callable[[Callable[[], Any], str], Any],
    outcome: Outcome,
    reason: str | None,
    attrs: dict[str, Any],
    value: float | None = None,
) -> TrialOutcome:
    """Record the attributes and tell Optuna the outcome, retried through ``storage``.

    ``skip_if_finished`` makes a repeated tell (after a connection lost between the
    commit and its answer) a no-op; a trial that another worker failed as stale meanwhile
    is reported as lost, not as this outcome.
    """
    if outcome in ("complete", "pruned"):
        state = optuna.trial.TrialState.COMPLETE if outcome == "complete" else PRUNED
    else:
        state = optuna.trial.TrialState.FAIL
        attrs = {**attrs, "failure_kind": outcome, "failure_reason": reason}
    try:
        storage(lambda: record_attrs(trial, attrs), "attributes")
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)
    told = storage(lambda: study.tell(trial, value, state=state, skip_if_finished=True), "outcome")
    if told.state != state or told.user_attrs.get("failure_kind") != attrs.get("failure_kind"):
        return _lost(trial)  # finished by another worker's stale check, not by this tell
    return TrialOutcome(trial.number, outcome, value=value, reason=reason)


def _lost(trial: optuna.Trial) -> TrialOutcome:
    log.warning(
        "trial %d was failed as stale while it ran (its heartbeats stopped for the grace "
        "period); its result is discarded and its requeued copy runs instead",
        trial.number,
    )
    return TrialOutcome(trial.number, "stale", reason="failed as stale while running")
