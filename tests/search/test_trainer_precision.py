"""Mixed precision in the trainer: bf16 autocast on CUDA, ignored (and said so) on CPU."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from cellsearch.models import SequenceModel
from cellsearch.search.tasks import AddingTask, TaskData, build_task
from cellsearch.search.trial.trainer import TrainResult, train
from cellsearch.search.trial_config import TrainConfig


def _adding(seq_len: int = 12, n_train: int = 256) -> TaskData:
    spec = AddingTask(kind="adding", seq_len=seq_len, n_train=n_train, n_val=64, n_test=64)
    return build_task(spec, seed=0)


def _model(data: TaskData, cell: str = "gru", hidden_size: int = 8) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(cell, data.meta.input_size, hidden_size, output_size=data.meta.output_size)


class DtypeProbe(nn.Module):
    """Wraps a model and records the dtype of every prediction it makes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.dtypes: set[torch.dtype] = set()

    def forward(self, x: Tensor) -> Tensor:
        prediction = self.model(x)
        self.dtypes.add(prediction.dtype)
        return prediction


def _curve(result: TrainResult) -> list[tuple[float, float, float]]:
    return [(e.train_loss, e.val_loss, e.val_metric) for e in result.history]


def test_bf16_on_cpu_is_ignored_said_so_and_trains_exactly_as_fp32() -> None:
    data = _adding()
    fp32 = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=2)
    bf16 = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=2, precision="bf16")
    probe = DtypeProbe(_model(data))
    ignored = train(probe, data, bf16)
    plain = train(_model(data), data, fp32)
    assert _curve(ignored) == _curve(plain)
    assert ignored.test_loss == plain.test_loss
    assert probe.dtypes == {torch.float32}  # no autocast took place
    assert ignored.precision == plain.precision == "fp32"
    assert plain.notes == ()
    assert len(ignored.notes) == 1 and "bf16 ignored on cpu" in ignored.notes[0]
    assert ignored.peak_memory_bytes is None and plain.peak_memory_bytes is None


def test_unknown_precision_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=1, precision="fp16")  # type: ignore[arg-type]


@pytest.mark.cuda
@pytest.mark.parametrize("cell", ["lstm", "gru", "mgu", "mingru"])
def test_bf16_on_cuda_runs_under_autocast_and_learns(cell: str) -> None:
    data = _adding(seq_len=10, n_train=2048)
    config = TrainConfig(learning_rate=1e-2, batch_size=64, max_epochs=6, precision="bf16")
    probe = DtypeProbe(_model(data, cell, hidden_size=32))
    result = train(probe, data, config, device="cuda")
    assert probe.dtypes == {torch.bfloat16}  # the head's output under autocast
    assert result.precision == "bf16" and result.notes == ()
    assert result.best_val_loss < data.meta.baseline  # learned something despite bfloat16
    assert result.peak_memory_bytes is not None and result.peak_memory_bytes > 0


@pytest.mark.cuda
def test_fp32_on_cuda_records_its_peak_memory() -> None:
    data = _adding(seq_len=10, n_train=256)
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=1)
    result = train(_model(data), data, config, device="cuda")
    assert result.precision == "fp32"
    assert result.peak_memory_bytes is not None
    assert result.peak_memory_bytes >= data.train.x.numel() * 4  # the training inputs at least
