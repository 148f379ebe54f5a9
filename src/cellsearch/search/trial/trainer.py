"""Train one model on one task: the inner loop of every trial.

The trainer relies only on ``model(x) -> prediction`` (``model(x, lengths)`` when the
task has variable-length sequences) and ``model.parameters()``. Data are moved to the
training device once; each epoch draws a seeded index permutation and slices it into
batches (no DataLoader, no per-sample Python). The hot loop keeps the
batch losses on the device and synchronises once per epoch, when it checks that the
epoch's loss is finite. Every epoch ends with a validation pass; the test set is
evaluated only when the validation loss improves, so the reported test metric is the one
at the best validation epoch (it is never used by the search).

Variable-length sequences are zero-padded at the end, never packed. The model gathers
the last valid step itself; per-step losses and metrics are masked past each sequence's
length, so that a padded batch scores exactly what its sequences score one by one.

Mixed precision (``precision="bf16"``) runs the model's forward pass under
``torch.autocast`` in bfloat16 on CUDA and returns float32 predictions, so losses,
metrics, gradients and optimizer state stay float32. On CPU it is ignored (the run is
float32, and :attr:`TrainResult.notes` says so).

A run can be checkpointed between epochs and resumed exactly
(:mod:`cellsearch.search.trial.checkpoint`): given a :class:`~.checkpoint.Checkpointer`,
the trainer hands it its whole state at the end of an epoch when one is due, and given a
state to resume from, it goes on from the epoch after it, as if it had never stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from cellsearch.search.errors import TrainingDiverged
from cellsearch.search.tasks.data import TaskData
from cellsearch.search.trial.checkpoint import (
    Checkpointer,
    CheckpointError,
    EpochResult,
    TrainState,
    capture_rng,
    restore_rng,
    seed_torch,
)
from cellsearch.search.trial.evaluation import DeviceSplit, Evaluation, evaluate, move_splits
from cellsearch.search.trial.losses import batch_loss
from cellsearch.search.trial.optimizers import make_optimizer
from cellsearch.search.trial_config import Precision, TrainConfig

StopReason = Literal["completed", "stopped", "time_limit"]


@dataclass(frozen=True)
class TrainResult:
    """Outcome of a training run.

    Attributes:
        best_epoch: Epoch of the lowest validation loss.
        test_loss: Test loss measured at ``best_epoch``.
        test_metric: Test metric measured at ``best_epoch``.
        seconds: Wall-clock time of the whole call (setup, training and evaluation).
        samples_per_second: Training samples processed per second of training steps
            (evaluation time excluded).
        stop_reason: ``completed`` (``max_epochs`` reached), ``stopped`` (``on_epoch``
            returned False) or ``time_limit`` (``max_seconds`` crossed).
        precision: The precision training ran in (``fp32`` when ``bf16`` was ignored).
        notes: Remarks on the run, e.g. that a requested precision was ignored.
        peak_memory_bytes: ``torch.cuda.max_memory_allocated`` over the call on CUDA;
            None elsewhere.
        best_weights: The model's weights at ``best_epoch``, when the run was asked to
            keep them.
        resumed_from: The epoch the run resumed after (0: it began at the start).
    """

    epochs_run: int
    best_epoch: int
    best_val_loss: float
    best_val_metric: float
    test_loss: float
    test_metric: float
    seconds: float
    seconds_per_epoch: float
    samples_per_second: float
    stop_reason: StopReason
    history: tuple[EpochResult, ...]
    precision: Precision = "fp32"
    notes: tuple[str, ...] = ()
    peak_memory_bytes: int | None = None
    best_weights: dict[str, Tensor] | None = None
    resumed_from: int = 0


def _train_epoch(
    model: nn.Module,
    train: DeviceSplit,
    data: TaskData[Tensor],
    config: TrainConfig,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor | None]:
    """Run one epoch of training steps.

    Returns:
        The batch losses and, for masked per-step targets, each batch's valid steps (the
        weight of its mean loss); both still on the device.
    """
    model.train()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    perm = torch.randperm(train.size, generator=generator).to(train.x.device)
    losses, steps = [], []
    for start in range(0, train.size, config.batch_size):
        idx = perm[start : start + config.batch_size]
        optimizer.zero_grad(set_to_none=True)
        prediction = train.predict(model, idx)
        mask = train.batch_mask(idx)
        loss = batch_loss(prediction, train.y[idx], data.meta.loss, mask=mask)
        if mask is not None:
            steps.append(mask.sum())
        loss.backward()
        if config.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses), torch.stack(steps) if steps else None  # (n_batches,)


def _epoch_train_loss(
    batch_losses: Tensor, n: int, batch_size: int, epoch: int, steps: Tensor | None = None
) -> float:
    """Weighted mean of the batch losses; raises if any batch was not finite.

    Batches weigh by their sequences, or by their valid steps when ``steps`` is given
    (masked per-step targets), so that the epoch's loss is the mean over the split.
    """
    if steps is None:
        weights = torch.full_like(batch_losses, float(batch_size))
        weights[-1] = n - batch_size * (len(batch_losses) - 1)
    else:
        weights = steps.to(batch_losses.dtype)
    value = float((batch_losses * weights).sum() / weights.sum())  # the one synchronisation
    if not math.isfinite(value):
        first_bad = int((~torch.isfinite(batch_losses)).nonzero()[0, 0])
        kind = "nan" if math.isnan(float(batch_losses[first_bad])) else "inf"
        message = f"train loss is {kind} at epoch {epoch}, batch {first_bad + 1}"
        raise TrainingDiverged(epoch, message)
    return value


class _Best:
    """Tracks the best validation epoch, the test evaluation taken there and, when asked,
    the model's weights there."""

    def __init__(self, keep_weights: bool) -> None:
        self.epoch = 0
        self.val = Evaluation(loss=math.inf, metric=math.nan)
        self.test = Evaluation(loss=math.nan, metric=math.nan)
        self.keep_weights = keep_weights
        self.weights: dict[str, Tensor] | None = None

    def improves(self, val: Evaluation) -> bool:
        return val.loss < self.val.loss

    def remember(self, model: nn.Module) -> None:
        if self.keep_weights:
            self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def record(self) -> dict[str, float]:
        return {"val_loss": self.val.loss, "val_metric": self.val.metric,
                "test_loss": self.test.loss, "test_metric": self.test.metric}  # fmt: skip

    def restore(self, state: TrainState) -> None:
        self.epoch, best = state.best_epoch, state.best
        self.val = Evaluation(loss=best["val_loss"], metric=best["val_metric"])
        self.test = Evaluation(loss=best["test_loss"], metric=best["test_metric"])
        self.weights = state.best_weights


class _Autocast(nn.Module):
    """Runs a model's forward pass under bfloat16 autocast; predictions come back float32."""

    def __init__(self, model: nn.Module, device_type: str) -> None:
        super().__init__()
        self.model = model
        self.device_type = device_type

    def forward(self, *args: Tensor) -> Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            prediction = self.model(*args)
        return prediction.float()  # losses and metrics in float32


def _precision(config: TrainConfig, device: torch.device) -> tuple[Precision, tuple[str, ...]]:
    """The precision a run uses on ``device``, and a note when the requested one is ignored."""
    if config.precision == "bf16" and device.type != "cuda":
        note = f"bf16 ignored on {device.type} (autocast is used on CUDA only): trained in fp32"
        return "fp32", (note,)
    return config.precision, ()


def _peak_memory(device: torch.device) -> int | None:
    """Peak allocated bytes on a CUDA device since the run's reset; None elsewhere."""
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


def _validate(
    model: nn.Module,
    splits: dict[str, DeviceSplit],
    data: TaskData[Tensor],
    batch_size: int,
    best: _Best,
    epoch: int,
) -> Evaluation:
    """Evaluate on the validation set; on improvement, also on the test set."""
    val = evaluate(model, splits["val"], data, batch_size)
    if not math.isfinite(val.loss):
        raise TrainingDiverged(epoch, f"val loss is {val.loss} at epoch {epoch}")
    if best.improves(val):
        best.epoch, best.val = epoch, val
        best.test = evaluate(model, splits["test"], data, batch_size)
        best.remember(model)
    return val


def _stop_reason(
    result: EpochResult,
    config: TrainConfig,
    on_epoch: Callable[[EpochResult], bool] | None,
    elapsed: float,
) -> StopReason | None:
    """Why training stops after this epoch, or None to go on."""
    if on_epoch is not None and not on_epoch(result):
        return "stopped"
    if result.epoch >= config.max_epochs:
        return "completed"
    if config.max_seconds is not None and elapsed >= config.max_seconds:
        return "time_limit"
    return None


def run_identity(model: nn.Module, config: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must share with the run that resumes it: the training
    configuration (but its time limit) and the model's parameter shapes."""
    settings = {k: v for k, v in asdict(config).items() if k != "max_seconds"}
    shapes = {name: list(p.shape) for name, p in model.state_dict().items()}
    return {"config": settings, "parameters": shapes}


def train(
    model: nn.Module,
    data: TaskData[Tensor],
    config: TrainConfig,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[EpochResult], bool] | None = None,
    *,
    checkpointer: Checkpointer | None = None,
    resume: TrainState | None = None,
    keep_best_weights: bool = False,
) -> TrainResult:
    """Train ``model`` on ``data`` and evaluate it after every epoch.

    The model is moved to ``device``; the caller seeds its initialisation. Training is
    seeded by ``config.seed`` (torch's generators and the batch-order generator), so a
    run on CPU is reproducible. With ``config.precision == "bf16"`` on CUDA the forward
    passes run under bfloat16 autocast; on CUDA the peak of allocated memory is recorded.

    Args:
        model: Any module mapping a batch ``(B, T, I)`` to predictions shaped like the
            task's targets (``(B, out)`` or ``(B, T, out)``); called as
            ``model(x, lengths)`` when the task has variable-length sequences.
        data: The task's tensors and loss/metric definitions.
        config: Training hyperparameters.
        device: Where to train (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).
        on_epoch: Called after every epoch, the last included; returning False stops
            training with stop reason ``"stopped"`` (pruning, shutdown, pause). Not called
            again for the epochs of a resumed state.
        checkpointer: Receives the run's state after an epoch when it says one is due (not
            after the last epoch: the run is over), and when the run is stopped after it
            asked for one (:meth:`~.checkpoint.Checkpointer.request`).
        resume: A state of this run (same configuration and model) to go on from.
        keep_best_weights: Keep the model's weights at the best epoch
            (:attr:`TrainResult.best_weights`; checkpoints keep them in any case).

    Returns:
        The run's summary and per-epoch history.

    Raises:
        TrainingDiverged: The training or validation loss became nan or inf.
        CheckpointError: ``resume`` belongs to another run.
    """
    run_start = time.perf_counter()
    device = torch.device(device)
    seed_torch(config.seed, device)
    generator = torch.Generator().manual_seed(config.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.to(device)
    precision, notes = _precision(config, device)
    runner = _Autocast(model, device.type) if precision == "bf16" else model
    splits = move_splits(data, device)
    optimizer = make_optimizer(model, config, device)
    best = _Best(keep_best_weights or checkpointer is not None)
    history: list[EpochResult] = []
    train_seconds, offset = 0.0, 0.0
    if resume is not None:
        train_seconds, offset = _resume(model, optimizer, generator, device, resume, config)
        best.restore(resume)
        history = list(resume.history)
    stop_reason: StopReason = "completed"
    for epoch in range(len(history) + 1, config.max_epochs + 1):
        epoch_start = time.perf_counter()
        batch_losses, steps = _train_epoch(
            runner, splits["train"], data, config, optimizer, generator
        )
        train_loss = _epoch_train_loss(
            batch_losses, splits["train"].size, config.batch_size, epoch, steps
        )
        train_seconds += time.perf_counter() - epoch_start
        val = _validate(runner, splits, data, config.batch_size, best, epoch)  # synchronises
        result = EpochResult(
            epoch, train_loss, val.loss, val.metric, time.perf_counter() - epoch_start
        )
        history.append(result)
        elapsed = offset + time.perf_counter() - run_start
        stop = _stop_reason(result, config, on_epoch, elapsed)
        wanted = checkpointer is not None and (
            checkpointer.requested if stop == "stopped" else checkpointer.due(result.seconds)
        )
        if wanted and stop in (None, "stopped") and checkpointer is not None:
            state = TrainState(
                run=run_identity(model, config), epoch=epoch, history=list(history),
                best_epoch=best.epoch, best=best.record(), best_weights=best.weights,
                model=model.state_dict(), optimizer=optimizer.state_dict(),
                rng=capture_rng(generator, device), train_seconds=train_seconds,
                elapsed=elapsed,
            )  # fmt: skip
            checkpointer.write(state)
        if stop is not None:
            stop_reason = stop
            break
    seconds = time.perf_counter() - run_start
    run_epochs = max(1, len(history) - (resume.epoch if resume else 0))
    return TrainResult(
        epochs_run=len(history),
        best_epoch=best.epoch,
        best_val_loss=best.val.loss,
        best_val_metric=best.val.metric,
        test_loss=best.test.loss,
        test_metric=best.test.metric,
        seconds=seconds,
        seconds_per_epoch=seconds / run_epochs,
        samples_per_second=splits["train"].size * len(history) / max(train_seconds, 1e-9),
        stop_reason=stop_reason,
        history=tuple(history),
        precision=precision,
        notes=notes,
        peak_memory_bytes=_peak_memory(device),
        best_weights=best.weights if keep_best_weights else None,
        resumed_from=resume.epoch if resume else 0,
    )


def _resume(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    device: torch.device,
    state: TrainState,
    config: TrainConfig,
) -> tuple[float, float]:
    """Put the run in ``state``; return its training seconds and elapsed seconds so far.

    Raises:
        CheckpointError: the state belongs to another run, or is past this run's end.
    """
    if state.run != run_identity(model, config):
        raise CheckpointError("it was written by a run with another configuration or model")
    if not 0 < state.epoch < config.max_epochs or len(state.history) != state.epoch:
        raise CheckpointError(f"its epoch {state.epoch} is not one to resume after")
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    restore_rng(state.rng, generator, device)
    return state.train_seconds, state.elapsed
