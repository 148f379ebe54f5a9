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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from cellsearch.search.errors import TrainingDiverged
from cellsearch.search.tasks.data import SPLITS, Split, TaskData, TaskMeta
from cellsearch.search.trial.losses import batch_loss, loss_units
from cellsearch.search.trial.optimizers import make_optimizer
from cellsearch.search.trial_config import Precision, TrainConfig

StopReason = Literal["completed", "stopped", "time_limit"]

_EVAL_STEPS_PER_BATCH = 2**19
"""Evaluation batches hold at most about this many time steps (sequences x T)."""
_MAX_EVAL_BATCH = 1024


@dataclass(frozen=True)
class EpochResult:
    """Measurements after one epoch (``epoch`` is 1-based; ``seconds`` is this epoch's)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    seconds: float


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


@dataclass(frozen=True)
class _Split:
    """Inputs and targets of one split, already on the training device.

    Attributes:
        lengths: Valid steps per sequence ``(N,)``, or None for fixed length.
        mask: ``(N, T)`` valid steps of per-step targets, or None when every step counts.
        units: Loss units of the whole split (the divisor of its mean loss).
    """

    x: Tensor
    y: Tensor
    lengths: Tensor | None = None
    mask: Tensor | None = None
    units: float = 0.0

    def predict(self, model: nn.Module, idx: Tensor | slice) -> Tensor:
        """The model's predictions for the sequences ``idx`` of this split."""
        if self.lengths is None:
            return model(self.x[idx])
        return model(self.x[idx], self.lengths[idx])

    def batch_mask(self, idx: Tensor | slice) -> Tensor | None:
        """The step mask of the sequences ``idx``, or None."""
        return None if self.mask is None else self.mask[idx]

    @property
    def size(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True)
class _Evaluation:
    loss: float
    metric: float


def _train_epoch(
    model: nn.Module,
    train: _Split,
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


def _eval_batch_size(split: _Split, batch_size: int) -> int:
    steps = max(1, split.x.shape[1])
    return max(batch_size, min(_MAX_EVAL_BATCH, _EVAL_STEPS_PER_BATCH // steps))


@torch.inference_mode()
def _evaluate(
    model: nn.Module, split: _Split, data: TaskData[Tensor], batch_size: int
) -> _Evaluation:
    """Mean loss and metric of the model on a split (eval mode, large batches)."""
    model.eval()
    loss_sum = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device)
    step = _eval_batch_size(split, batch_size)
    for start in range(0, split.size, step):
        rows = slice(start, start + step)
        prediction = split.predict(model, rows)
        target, mask = split.y[rows], split.batch_mask(rows)
        loss_sum += batch_loss(prediction, target, data.meta.loss, reduction="sum", mask=mask)
        if data.meta.metric == "accuracy":
            hits = prediction.argmax(dim=-1) == target  # (B,) or (B, T)
            correct += (hits if mask is None else hits & mask).sum()
    total_loss, total_correct = torch.stack([loss_sum, correct]).tolist()
    loss = total_loss / split.units
    metric = total_correct / split.units if data.meta.metric == "accuracy" else loss
    return _Evaluation(loss=loss, metric=metric)


class _Best:
    """Tracks the best validation epoch and the test evaluation taken there."""

    def __init__(self) -> None:
        self.epoch = 0
        self.val = _Evaluation(loss=math.inf, metric=math.nan)
        self.test = _Evaluation(loss=math.nan, metric=math.nan)

    def improves(self, val: _Evaluation) -> bool:
        return val.loss < self.val.loss


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


def _move_split(split: Split[Tensor], meta: TaskMeta, device: torch.device) -> _Split:
    x, y = split.x.to(device), split.y.to(device)
    lengths, mask = split.lengths, None
    if lengths is not None:
        lengths = lengths.to(device)
        if meta.head == "per_step":
            mask = torch.arange(x.shape[1], device=device) < lengths[:, None]  # (N, T)
    return _Split(x, y, lengths, mask, float(loss_units(y, meta.loss, mask)))


def _move_splits(data: TaskData[Tensor], device: torch.device) -> dict[str, _Split]:
    """Move the task's tensors to the training device, once."""
    return {name: _move_split(data.split(name), data.meta, device) for name in SPLITS}


def _validate(
    model: nn.Module,
    splits: dict[str, _Split],
    data: TaskData[Tensor],
    batch_size: int,
    best: _Best,
    epoch: int,
) -> _Evaluation:
    """Evaluate on the validation set; on improvement, also on the test set."""
    val = _evaluate(model, splits["val"], data, batch_size)
    if not math.isfinite(val.loss):
        raise TrainingDiverged(epoch, f"val loss is {val.loss} at epoch {epoch}")
    if best.improves(val):
        best.epoch, best.val = epoch, val
        best.test = _evaluate(model, splits["test"], data, batch_size)
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


def train(
    model: nn.Module,
    data: TaskData[Tensor],
    config: TrainConfig,
    device: torch.device | str = "cpu",
    on_epoch: Callable[[EpochResult], bool] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` and evaluate it after every epoch.

    The model is moved to ``device``; the caller seeds its initialisation. Training is
    seeded by ``config.seed`` (``torch.manual_seed`` and the batch-order generator), so a
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
            training with stop reason ``"stopped"`` (pruning, shutdown, pause).

    Returns:
        The run's summary and per-epoch history.

    Raises:
        TrainingDiverged: The training or validation loss became nan or inf.
    """
    run_start = time.perf_counter()
    device = torch.device(device)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model.to(device)
    precision, notes = _precision(config, device)
    runner = _Autocast(model, device.type) if precision == "bf16" else model
    splits = _move_splits(data, device)
    optimizer = make_optimizer(model, config, device)
    best = _Best()
    history: list[EpochResult] = []
    train_seconds = 0.0
    stop_reason: StopReason = "completed"
    for epoch in range(1, config.max_epochs + 1):
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
        stop = _stop_reason(result, config, on_epoch, time.perf_counter() - run_start)
        if stop is not None:
            stop_reason = stop
            break
    seconds = time.perf_counter() - run_start
    return TrainResult(
        epochs_run=len(history),
        best_epoch=best.epoch,
        best_val_loss=best.val.loss,
        best_val_metric=best.val.metric,
        test_loss=best.test.loss,
        test_metric=best.test.metric,
        seconds=seconds,
        seconds_per_epoch=seconds / len(history),
        samples_per_second=splits["train"].size * len(history) / max(train_seconds, 1e-9),
        stop_reason=stop_reason,
        history=tuple(history),
        precision=precision,
        notes=notes,
        peak_memory_bytes=_peak_memory(device),
    )
