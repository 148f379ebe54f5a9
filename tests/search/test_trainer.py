"""Tests of the trainer: learning, seeding, stopping, divergence and bookkeeping."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
from torch import Tensor, nn

from cellsearch.models import SequenceModel
from cellsearch.search.errors import TrainingDiverged
from cellsearch.search.tasks import (
    AddingTask,
    CopyTask,
    DigitsTask,
    Split,
    TaskData,
    TaskMeta,
    build_task,
)
from cellsearch.search.trial.trainer import EpochResult, train
from cellsearch.search.trial_config import TrainConfig


class Scripted(nn.Module):
    """Predicts a constant chosen by a script, to control what the trainer sees.

    In training mode the n-th forward call predicts ``train_values(n)``; in eval mode the
    prediction is ``eval_values[phase]``, where the test advances ``phase`` per epoch.
    """

    def __init__(self, eval_values: list[float], nan_at_call: int | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.eval_values = eval_values
        self.nan_at_call = nan_at_call
        self.phase = 0
        self.train_calls = 0
        self.eval_calls = 0

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            value = float("nan") if self.train_calls == self.nan_at_call else 1.0
            self.train_calls += 1
        else:
            value = self.eval_values[self.phase]
            self.eval_calls += 1
        return torch.full((x.shape[0], 1), value) + 0.0 * self.weight  # (B, 1)


def _adding(seq_len: int = 25, n_train: int = 2000, n_val: int = 500) -> TaskData:
    spec = AddingTask(kind="adding", seq_len=seq_len, n_train=n_train, n_val=n_val, n_test=n_val)
    return build_task(spec, seed=0)


def _gru(
    data: TaskData, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0
) -> nn.Module:
    torch.manual_seed(0)
    return SequenceModel(
        "gru",
        data.meta.input_size,
        hidden_size,
        num_layers=num_layers,
        dropout=dropout,
        output_size=data.meta.output_size,
        head=data.meta.head,
    )


# --- learning ----------------------------------------------------------------------------


def test_gru_beats_the_adding_baseline() -> None:
    data = _adding()
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=6)
    result = train(_gru(data), data, config)
    assert data.meta.baseline == pytest.approx(1 / 6, abs=0.02)
    assert result.best_val_loss < data.meta.baseline / 10
    assert result.test_metric < data.meta.baseline / 10
    assert result.stop_reason == "completed" and result.epochs_run == 6


def test_digits_accuracy_is_well_above_chance() -> None:
    data = build_task(DigitsTask(kind="digits"), seed=0)
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=4)
    result = train(_gru(data), data, config)
    assert result.best_val_metric > 0.6 > 0.1  # chance: ten balanced classes
    assert result.test_metric > 0.6
    assert result.best_val_loss < data.meta.baseline


def test_copy_task_trains_per_step() -> None:
    data = build_task(CopyTask(kind="copy", seq_len=5, n_train=256, n_val=64, n_test=64), 0)
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=3)
    result = train(_gru(data, hidden_size=16), data, config)
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert result.best_val_metric == result.best_val_loss  # the metric is the CE itself


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_runs(optimizer: str) -> None:
    data = _adding(seq_len=6, n_train=64, n_val=16)
    config = TrainConfig(
        learning_rate=1e-3,
        batch_size=16,
        max_epochs=1,
        optimizer=optimizer,  # type: ignore[arg-type]
        weight_decay=1e-4,
    )
    assert train(_gru(data, hidden_size=8), data, config).epochs_run == 1


# --- reproducibility and bookkeeping -----------------------------------------------------


def _losses(data: TaskData, train_seed: int) -> list[tuple[float, float, float]]:
    config = TrainConfig(learning_rate=1e-2, batch_size=16, max_epochs=3, seed=train_seed)
    result = train(_gru(data, hidden_size=8, num_layers=2, dropout=0.3), data, config)
    return [(e.train_loss, e.val_loss, e.val_metric) for e in result.history]


def test_same_seed_gives_identical_history() -> None:
    data = _adding(seq_len=10, n_train=200, n_val=50)
    assert _losses(data, train_seed=7) == _losses(data, train_seed=7)
    assert _losses(data, train_seed=7) != _losses(data, train_seed=8)


def test_result_bookkeeping() -> None:
    data = _adding(seq_len=8, n_train=100, n_val=20)
    result = train(
        _gru(data, 8), data, TrainConfig(learning_rate=1e-3, batch_size=32, max_epochs=2)
    )
    assert [e.epoch for e in result.history] == [1, 2]
    assert result.samples_per_second > 0
    assert result.seconds >= sum(e.seconds for e in result.history) * 0.99
    assert result.seconds_per_epoch == pytest.approx(result.seconds / 2)
    assert result.best_epoch in (1, 2)
    best = result.history[result.best_epoch - 1]
    assert (result.best_val_loss, result.best_val_metric) == (best.val_loss, best.val_metric)


def test_train_loss_is_the_sample_weighted_mean() -> None:
    data = _adding(seq_len=4, n_train=10, n_val=5)  # batches of 4, 4 and 2
    result = train(
        Scripted([1.0]), data, TrainConfig(learning_rate=1e-3, batch_size=4, max_epochs=1)
    )
    expected = float(((data.train.y - 1.0) ** 2).mean())
    assert result.history[0].train_loss == pytest.approx(expected, rel=1e-6)


def test_test_metric_is_taken_at_the_best_validation_epoch() -> None:
    data = _adding(seq_len=4, n_train=32, n_val=64)
    model = Scripted(eval_values=[0.0, 1.0, 3.0, 0.5])

    def next_phase(result: EpochResult) -> bool:
        model.phase += 1
        return True

    config = TrainConfig(learning_rate=1e-3, batch_size=8, max_epochs=4)
    result = train(model, data, config, on_epoch=next_phase)

    def mse(y: Tensor, c: float) -> float:
        return float(((y - c) ** 2).mean())

    assert result.best_epoch == 2
    assert result.best_val_loss == pytest.approx(mse(data.val.y, 1.0), rel=1e-6)
    assert result.test_metric == pytest.approx(mse(data.test.y, 1.0), rel=1e-6)
    assert result.test_loss == result.test_metric
    assert model.eval_calls == 4 + 2  # val every epoch; test at epochs 1 and 2 only


# --- stopping ----------------------------------------------------------------------------


def test_on_epoch_false_stops_training() -> None:
    data = _adding(seq_len=6, n_train=64, n_val=16)
    seen: list[int] = []

    def stop_after_two(result: EpochResult) -> bool:
        seen.append(result.epoch)
        return result.epoch < 2

    config = TrainConfig(learning_rate=1e-3, batch_size=16, max_epochs=10)
    result = train(_gru(data, 8), data, config, on_epoch=stop_after_two)
    assert (result.stop_reason, result.epochs_run, seen) == ("stopped", 2, [1, 2])


def test_max_seconds_stops_after_the_crossing_epoch() -> None:
    data = _adding(seq_len=6, n_train=64, n_val=16)
    config = TrainConfig(learning_rate=1e-3, batch_size=16, max_epochs=10, max_seconds=1e-6)
    result = train(_gru(data, 8), data, config)
    assert (result.stop_reason, result.epochs_run) == ("time_limit", 1)


def test_time_limit_on_the_last_epoch_counts_as_completed() -> None:
    data = _adding(seq_len=6, n_train=64, n_val=16)
    config = TrainConfig(learning_rate=1e-3, batch_size=16, max_epochs=1, max_seconds=1e-6)
    assert train(_gru(data, 8), data, config).stop_reason == "completed"


# --- divergence --------------------------------------------------------------------------


def test_nan_in_one_batch_raises_with_epoch_and_batch() -> None:
    data = _adding(seq_len=4, n_train=64, n_val=8)  # 16 batches of 4 per epoch
    model = Scripted([1.0], nan_at_call=2 * 16 + 11)
    config = TrainConfig(learning_rate=1e-3, batch_size=4, max_epochs=5)
    with pytest.raises(TrainingDiverged) as caught:
        train(model, data, config)
    assert caught.value.epoch == 3
    assert caught.value.reason == "train loss is nan at epoch 3, batch 12"
    assert str(caught.value) == caught.value.reason


def test_nan_validation_loss_raises() -> None:
    data = _adding(seq_len=4, n_train=16, n_val=8)
    config = TrainConfig(learning_rate=1e-3, batch_size=4, max_epochs=3)
    with pytest.raises(TrainingDiverged, match="val loss is nan at epoch 1") as caught:
        train(Scripted([float("nan")]), data, config)
    assert caught.value.epoch == 1


def test_huge_learning_rate_without_clipping_diverges() -> None:
    data = _adding(seq_len=10, n_train=256, n_val=32)
    config = TrainConfig(
        learning_rate=1e10, batch_size=32, max_epochs=5, optimizer="sgd", grad_clip=None
    )
    with pytest.raises(TrainingDiverged, match=r"(train|val) loss is (nan|inf)") as caught:
        train(_gru(data, 8), data, config)
    assert 1 <= caught.value.epoch <= 5


# --- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"learning_rate": 0.0},
        {"batch_size": 0},
        {"max_epochs": 0},
        {"weight_decay": -1.0},
        {"grad_clip": 0.0},
        {"max_seconds": 0.0},
        {"optimizer": "lbfgs"},
    ],
)
def test_invalid_config_is_rejected(changes: dict[str, object]) -> None:
    arguments: dict[str, object] = {"learning_rate": 1e-3, "batch_size": 8, "max_epochs": 1}
    with pytest.raises(ValueError):
        TrainConfig(**{**arguments, **changes})  # type: ignore[arg-type]


@pytest.mark.cuda
def test_trains_on_cuda() -> None:
    data = _adding(seq_len=10, n_train=256, n_val=64)
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=2)
    result = train(_gru(data, 16), data, config, device="cuda")
    assert result.epochs_run == 2 and result.samples_per_second > 0


# --- per-step binary targets -------------------------------------------------------------


class ConstantLogits(nn.Module):
    """Per-step logits of zero (p = 0.5 for every output), plus a trainable no-op."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.outputs = outputs

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        return torch.zeros(*x.shape[:2], self.outputs) + 0.0 * self.weight  # (B, T, O)


def _binary_task(lengths: Tensor | None) -> TaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (12, 6, 5), generator=g).float()
    meta = TaskMeta(5, 5, "per_step", "bce", "nll", baseline=1.0, baseline_description="")
    split = Split(x, x, lengths)
    return TaskData(meta, split, split, split)


@pytest.mark.parametrize("lengths", [None, torch.tensor([1, 6, 3, 2, 6, 5] * 2)])
def test_bce_loss_is_summed_over_outputs_and_averaged_over_steps(lengths: Tensor | None) -> None:
    config = TrainConfig(learning_rate=1e-3, batch_size=5, max_epochs=1)
    result = train(ConstantLogits(5), _binary_task(lengths), config)
    expected = 5 * math.log(2)  # every step: five Bernoulli(0.5) guesses
    assert result.history[0].train_loss == pytest.approx(expected, rel=1e-6)
    assert result.best_val_loss == pytest.approx(expected, rel=1e-6)


def test_variable_length_per_step_task_learns() -> None:
    data = _binary_task(torch.tensor([1, 6, 3, 2, 6, 5] * 2))
    torch.manual_seed(0)
    model = SequenceModel("gru", 5, 16, output_size=5, head="per_step")
    result = train(model, data, TrainConfig(learning_rate=3e-2, batch_size=4, max_epochs=15))
    assert result.best_val_loss < 0.5 * 5 * math.log(2)  # copying the input is learnable


def test_warm_up_leaves_nothing_for_the_first_trial_to_import() -> None:
    # In a fresh interpreter: after warm_up, a first trial with every optimizer imports no
    # further torch module (the import behind the first optimizer is over a second).
    script = """
import sys, torch
from cellsearch.models import SequenceModel
from cellsearch.search.tasks import AddingTask, build_task
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig
from cellsearch.search.trial.optimizers import warm_up
warm_up(torch.device("cpu"))
before = {m for m in sys.modules if m.startswith("torch")}
data = build_task(AddingTask(kind="adding", seq_len=4, n_train=8, n_val=4, n_test=4), 0)
for name in ("adam", "adamw", "sgd", "rmsprop"):
    model = SequenceModel("lstm", data.meta.input_size, 4, output_size=data.meta.output_size)
    train(model, data, TrainConfig(learning_rate=1e-3, batch_size=4, max_epochs=1,
                                   optimizer=name))
print(sorted({m for m in sys.modules if m.startswith("torch")} - before))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
