"""One trial: sample a configuration, build the model, train it, tell Optuna.

How each outcome is recorded and whether it counts toward the budget is the trial
record's business (:mod:`cellsearch.search.record`); this module decides which outcome a
trial had.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
import torch
from optuna.trial import FrozenTrial

from cellsearch.models import SequenceModel, count_parameters
from cellsearch.search import record
from cellsearch.search.errors import TrainingDiverged
from cellsearch.search.optuna_adapter import record_attrs
from cellsearch.search.study.reevaluation import JOB_SEED_OFFSET
from cellsearch.search.study.sampling import trial_seed
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import TaskData
from cellsearch.search.trial import retry
from cellsearch.search.trial.checkpoint import TrainState, seed_torch
from cellsearch.search.trial.keeping import Keeper
from cellsearch.search.trial.model_file import model_file
from cellsearch.search.trial.space import suggest_config
from cellsearch.search.trial.trainer import EpochResult, run_identity, train

log = logging.getLogger(__name__)

Outcome = Literal["complete", "pruned", "diverged", "error", "interrupted", "stale", "setup"]
PRUNED = optuna.trial.TrialState.PRUNED


@dataclass(frozen=True)
class TrialOutcome:
    """What :func:`run_trial` did with a trial."""

    number: int
    outcome: Outcome
    value: float | None = None
    reason: str | None = None


def requeue(study: optuna.Study, trial: optuna.Trial | FrozenTrial, reason: str) -> None:
    """Enqueue ``trial``'s parameters again (and its re-evaluation job, if it runs one) so
    that a worker re-runs them."""
    attrs = record.requeue_attrs(trial.number, trial.user_attrs, reason)
    study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    spec: StudySpec,
    data: TaskData[torch.Tensor],
    device: torch.device,
    should_continue: Callable[[], bool],
    *,
    on_start: Callable[[dict[str, Any]], None] | None = None,
    patience: float = 0.0,
    keeper: Keeper | None = None,
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
            unreachable (:func:`cellsearch.search.trial.retry.retrying`). A storage error
            that outlasts it is raised, never recorded as the trial's outcome: the trial
            stays running and, once its heartbeats have stopped for the grace period, is
            requeued by a worker.
        keeper: Where checkpoints and kept models go (:mod:`.keeping`): the trial
            checkpoints as it trains, a requeued copy resumes from its chain's last
            checkpoint (its seed, curve and weights), and a completed trial's best-epoch
            weights are offered to be kept. None keeps nothing.
    """
    retried = retry.for_trial(trial.number, patience)
    state, note = None, None
    if keeper is not None:
        state, note = retried(lambda: keeper.resume(study, trial), "resume")
    seed = _seed(spec, trial, state)
    meta = data.meta
    try:
        config = retried(
            lambda: suggest_config(
                trial, spec, input_size=meta.input_size, output_size=meta.output_size, seed=seed
            ),
            "sampling",
        )
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)
    seed_torch(seed, device)
    model = SequenceModel(
        cell=config.model.cell_type,
        input_size=meta.input_size,
        hidden_size=config.model.hidden_size,
        num_layers=config.model.num_layers,
        dropout=config.model.dropout,
        output_size=meta.output_size,
        head=meta.head,
        cell_options=config.model.cell_options,
    )
    if state is not None and state.run != run_identity(model, config.train):
        state, note = None, "its chain's checkpoint belongs to another configuration; restarted"
    static = record.static_attrs(
        config,
        param_count=count_parameters(model),
        device=str(device),
        seed=seed,
        torch_version=torch.__version__,
    )
    static.update(record.resume_attrs(state.epoch if state else 0, note))
    if on_start is None:
        retried(lambda: record_attrs(trial, static), "attributes")
    else:
        on_start(static)
    for done in state.history if state else ():  # the pruner sees the whole curve, once
        value = _objective_value(spec, done.val_loss, done.val_metric)
        retried(lambda: trial.report(value, done.epoch), "report")  # noqa: B023 - called now
    checkpointer = None if keeper is None else keeper.checkpointer(study, trial)
    interrupted = False

    def on_epoch(epoch: EpochResult) -> bool:
        nonlocal interrupted
        value = _objective_value(spec, epoch.val_loss, epoch.val_metric)
        retried(lambda: trial.report(value, epoch.epoch), "report")
        if retried(trial.should_prune, "pruning check"):
            return False
        if epoch.epoch >= spec.budget.max_epochs:
            return True  # the trial is done: finish it rather than requeue finished work
        if not retried(should_continue, "status check"):
            interrupted = True
            if checkpointer is not None:
                checkpointer.request()  # its copy resumes from here
            return False
        return True

    finish = functools.partial(_finish, study, trial, retried, spec.objective.metric)
    kept = functools.partial(_kept, keeper, study, trial, retried, config.model.cell_type)
    try:
        result = train(
            model.to(device), data, config.train, device, on_epoch,
            checkpointer=checkpointer, resume=state, keep_best_weights=keeper is not None,
        )  # fmt: skip
    except TrainingDiverged as exc:
        return finish("diverged", str(exc), kept(static))
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)  # another worker failed it as stale while it trained
    except Exception as exc:
        if retry.is_transient(exc):
            raise  # the database, not the model: never a recorded outcome
        log.warning("trial %d failed: %s", trial.number, traceback.format_exc())
        reason = f"{type(exc).__name__}: {exc}"  # a bug, out of memory
        return finish("error", reason, kept(static))
    attrs = {**static, **record.result_attrs(result, meta.metric)}
    if interrupted:
        return finish("interrupted", "stopped by the worker (pause, cancel or exit)", attrs)
    if result.stop_reason == "stopped":  # the pruner asked to stop
        return finish("pruned", None, kept(attrs))
    best = _objective_value(spec, result.best_val_loss, result.best_val_metric)
    weights = None
    if result.best_weights is not None:
        weights = functools.partial(
            model_file, result, config, meta, spec, study.study_name, trial.number, best
        )
    return finish("complete", None, kept(attrs, weights, best), best)


def _seed(spec: StudySpec, trial: optuna.Trial, state: TrainState | None) -> int:
    """The trial's seed: its resumed run's (so the copy goes on as its original would have),
    else one of its own (a re-evaluation job's from its job)."""
    if state is not None:
        return int(state.run["config"]["seed"])
    job = trial.user_attrs.get(record.Attr.REEVALUATION_JOB)
    return trial_seed(spec.seed, 1_000_000 + trial.number if job is None else JOB_SEED_OFFSET + job)


def _kept(
    keeper: Keeper | None,
    study: optuna.Study,
    trial: optuna.Trial,
    retried: Callable[[Callable[[], Any], str], Any],
    cell_type: str,
    attrs: dict[str, Any],
    model: Callable[[], bytes] | None = None,
    value: float | None = None,
) -> dict[str, Any]:
    """``attrs``, once the keeper has cleaned up after the finished trial and kept its
    ``model`` (made only then) if it is among the best (with a note when a model was not
    kept for want of room)."""
    if keeper is None:
        return attrs
    note = retried(lambda: keeper.finished(study, trial, model, value, cell_type), "artifacts")
    return {**attrs, record.Attr.ARTIFACT_NOTE: note} if note else attrs


def _objective_value(spec: StudySpec, val_loss: float, val_metric: float) -> float:
    return val_loss if spec.objective.metric == "val_loss" else val_metric


def _finish(
    study: optuna.Study,
    trial: optuna.Trial,
    retried: Callable[[Callable[[], Any], str], Any],
    metric: str,
    outcome: Outcome,
    reason: str | None,
    attrs: dict[str, Any],
    value: float | None = None,
) -> TrialOutcome:
    """Record the attributes and tell Optuna the outcome, each call retried.

    ``skip_if_finished`` makes a repeated tell (after a connection lost between the
    commit and its answer) a no-op; a trial that another worker failed as stale meanwhile
    is reported as lost, not as this outcome.
    """
    if outcome in ("complete", "pruned"):
        state = optuna.trial.TrialState.COMPLETE if outcome == "complete" else PRUNED
    else:
        state = optuna.trial.TrialState.FAIL
        attrs = {**attrs, **record.failure_attrs(outcome, reason)}
    try:
        retried(lambda: record_attrs(trial, attrs), "attributes")
    except optuna.exceptions.UpdateFinishedTrialError:
        return _lost(trial)
    told = retried(lambda: study.tell(trial, value, state=state, skip_if_finished=True), "outcome")
    kind = record.Attr.FAILURE_KIND
    if told.state != state or told.user_attrs.get(kind) != attrs.get(kind):
        return _lost(trial)  # finished by another worker's stale check, not by this tell
    log.info("%s", outcome_line(study.study_name, trial.number, outcome, metric, value, attrs))
    return TrialOutcome(trial.number, outcome, value=value, reason=reason)


def outcome_line(
    study: str, number: int, outcome: str, metric: str, value: float | None, attrs: dict[str, Any]
) -> str:
    """The log line of a finished trial: cell, outcome, value, epochs, seconds."""
    cell = attrs.get(record.Attr.CELL_TYPE, "?")
    parts = [f"study {study} trial {number} ({cell}) {outcome}"]
    if value is not None:
        parts.append(f"{metric} {value:.5g}")
    if attrs.get(record.Attr.EPOCHS_RUN) is not None:
        parts.append(f"{attrs[record.Attr.EPOCHS_RUN]} epochs")
    if attrs.get(record.Attr.SECONDS) is not None:
        parts.append(f"{attrs[record.Attr.SECONDS]:.1f} s")
    if attrs.get(record.Attr.FAILURE_REASON):
        parts.append(str(attrs[record.Attr.FAILURE_REASON])[:200])
    return ", ".join(parts)


def _lost(trial: optuna.Trial) -> TrialOutcome:
    log.warning(
        "trial %d was failed as stale while it ran (its heartbeats stopped for the grace "
        "period); its result is discarded and its requeued copy runs instead",
        trial.number,
    )
    return TrialOutcome(trial.number, "stale", reason="failed as stale while running")
