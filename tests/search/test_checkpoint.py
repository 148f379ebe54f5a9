"""Checkpoints: a run stopped between any two epochs and resumed gives the run that never
stopped, bit for bit on CPU; a damaged or foreign checkpoint is refused, never half-used."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
import torch

from cellsearch.models import SequenceModel
from cellsearch.search.tasks import AddingTask, DigitsTask, TaskData, build_task
from cellsearch.search.trial.checkpoint import (
    Checkpointer,
    CheckpointError,
    EpochResult,
    TrainState,
    digest,
    dump_state,
    load_state,
    seed_torch,
)
from cellsearch.search.trial.trainer import TrainResult, train
from cellsearch.search.trial_config import OptimizerName, TrainConfig

EPOCHS = 4


def _data(kind: str) -> TaskData:
    if kind == "digits":  # classification: accuracy, cross-entropy
        return build_task(DigitsTask(kind="digits", mode="rows"), seed=0)
    spec = AddingTask(kind="adding", seq_len=12, n_train=200, n_val=64, n_test=64)
    return build_task(spec, seed=0)


def _model(data: TaskData, cell: str, init_seed: int) -> SequenceModel:
    torch.manual_seed(init_seed)
    meta = data.meta
    return SequenceModel(
        cell, meta.input_size, 8, num_layers=2, dropout=0.3,  # dropout draws from the RNG
        output_size=meta.output_size, head=meta.head,
    )  # fmt: skip


def _config(optimizer: OptimizerName) -> TrainConfig:
    return TrainConfig(learning_rate=0.01, batch_size=32, max_epochs=EPOCHS,
                       optimizer=optimizer, weight_decay=1e-4, seed=11)  # fmt: skip


def _saved_every_epoch(data: TaskData, cell: str, config: TrainConfig) -> list[bytes]:
    blobs: list[bytes] = []

    def write(state: TrainState) -> bool:
        blobs.append(dump_state(state))
        return True

    checkpointer = Checkpointer(0.0, write)
    train(_model(data, cell, 0), data, config, checkpointer=checkpointer)
    return blobs


def _same(a: TrainResult, b: TrainResult) -> None:
    """The same learning curve and outcome, to the bit (times aside)."""
    curve = [(x.epoch, x.train_loss, x.val_loss, x.val_metric) for x in a.history]
    assert curve == [(x.epoch, x.train_loss, x.val_loss, x.val_metric) for x in b.history]
    assert (a.best_epoch, a.best_val_loss, a.test_loss, a.test_metric) == (
        b.best_epoch, b.best_val_loss, b.test_loss, b.test_metric,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "optimizer", "kind"),
    [("lstm", "adam", "adding"), ("gru", "sgd", "digits"), ("mgu", "rmsprop", "adding"),
     ("mingru", "adamw", "adding")],
)  # fmt: skip
def test_a_run_resumed_after_any_epoch_is_the_run_that_never_stopped(
    cell: str, optimizer: OptimizerName, kind: str
) -> None:
    data, config = _data(kind), _config(optimizer)
    whole_model = _model(data, cell, 0)
    whole = train(whole_model, data, config, keep_best_weights=True)
    blobs = _saved_every_epoch(data, cell, config)
    assert len(blobs) == EPOCHS - 1  # none after the last epoch: the run is over
    stop = random.Random(cell).randrange(1, EPOCHS)  # the "kill": after epoch `stop`
    state = load_state(blobs[stop - 1], expected_digest=digest(blobs[stop - 1]))
    random.seed(123)  # a new process: whatever its random states were
    np.random.seed(456)
    resumed_model = _model(data, cell, init_seed=99)  # other initial weights: overwritten
    seen: list[int] = []

    def on_epoch(result: EpochResult) -> bool:
        seen.append(result.epoch)
        return True

    resumed = train(
        resumed_model, data, config, on_epoch=on_epoch, resume=state, keep_best_weights=True
    )
    assert seen == list(range(stop + 1, EPOCHS + 1))  # earlier epochs were reported before
    assert resumed.resumed_from == stop and resumed.epochs_run == EPOCHS
    _same(whole, resumed)
    for name, tensor in whole_model.state_dict().items():
        assert torch.equal(tensor, resumed_model.state_dict()[name]), name
    assert whole.best_weights is not None and resumed.best_weights is not None
    for name, tensor in whole.best_weights.items():
        assert torch.equal(tensor, resumed.best_weights[name]), name


def _state(data: TaskData) -> tuple[bytes, TrainConfig]:
    config = _config("adam")
    return _saved_every_epoch(data, "gru", config)[1], config


def test_a_damaged_checkpoint_is_refused() -> None:
    data = _data("adding")
    blob, _ = _state(data)
    flipped = bytearray(blob)
    flipped[-5] ^= 0xFF  # one weight's bits
    with pytest.raises(CheckpointError, match="digest"):
        load_state(bytes(flipped), expected_digest=digest(blob))
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_state(blob[: len(blob) // 2], expected_digest=None)  # truncated by a kill
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_state(b"", expected_digest=None)


def test_a_checkpoint_of_another_run_is_refused() -> None:
    data = _data("adding")
    blob, config = _state(data)
    state = load_state(blob, expected_digest=None)
    other = TrainConfig(**{**config.__dict__, "learning_rate": 0.02})
    with pytest.raises(CheckpointError, match="another configuration"):
        train(_model(data, "gru", 0), data, other, resume=state)
    with pytest.raises(CheckpointError, match="another configuration"):
        train(SequenceModel("gru", 1, 16, output_size=1), data, config, resume=state)
    with pytest.raises(CheckpointError, match="another configuration"):
        load_state(blob, expected_digest=None, run={"config": {}, "parameters": {}})


def test_the_time_limit_counts_the_time_before_the_stop() -> None:
    data = _data("adding")
    blob, config = _state(data)
    state = load_state(blob, expected_digest=None)
    state.elapsed = 1e6  # the run had already used more than its limit
    limited = TrainConfig(**{**config.__dict__, "max_seconds": 60.0})
    # the time limit is left out of what a checkpoint must share with its run
    result = train(_model(data, "gru", 0), data, limited, resume=state)
    assert result.stop_reason == "time_limit" and result.epochs_run == state.epoch + 1


def test_checkpoints_are_written_when_waiting_longer_would_lose_the_interval() -> None:
    now = [0.0]
    checkpointer = Checkpointer(10.0, lambda _state: True, clock=lambda: now[0])
    now[0] = 4.0
    assert not checkpointer.due(epoch_seconds=4.0)  # 8 s unsaved after the next epoch
    now[0] = 7.0
    assert checkpointer.due(epoch_seconds=4.0)  # 11 s: write now
    assert checkpointer.write(_dummy())
    assert checkpointer.written == 1 and not checkpointer.due(epoch_seconds=4.0)
    assert Checkpointer(0.0, lambda _state: True).due(epoch_seconds=0.0)


def test_a_failed_write_leaves_the_next_epoch_due() -> None:
    now = [0.0]
    answers = [False, True]
    checkpointer = Checkpointer(10.0, lambda _state: answers.pop(0), clock=lambda: now[0])
    now[0] = 7.0
    assert checkpointer.due(epoch_seconds=4.0) and not checkpointer.write(_dummy())
    now[0] = 11.0  # the next epoch: unsaved since 0, not since the failed write at 7
    assert checkpointer.due(epoch_seconds=4.0)
    assert checkpointer.write(_dummy())
    assert (checkpointer.written, checkpointer.failed) == (1, 1)
    assert not checkpointer.due(epoch_seconds=4.0)


def _dummy() -> TrainState:
    return TrainState(run={}, epoch=1, history=[], best_epoch=0, best={}, best_weights=None,
                      model={}, optimizer={})  # fmt: skip


def test_seeding_a_cpu_run_draws_as_torch_manual_seed_and_queues_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import traceback

    torch.manual_seed(5)
    expected = (torch.rand(4), torch.randn(2, 3))
    stacks: list[int] = []
    real = traceback.format_stack

    def counted(*args: Any) -> list[str]:
        stacks.append(1)
        return real(*args)

    monkeypatch.setattr(traceback, "format_stack", counted)
    seed_torch(5, torch.device("cpu"))
    drawn = (torch.rand(4), torch.randn(2, 3))
    assert all(torch.equal(a, b) for a, b in zip(expected, drawn, strict=True))
    if not torch.cuda.is_initialized():  # torch.manual_seed would queue CUDA's seeding
        assert stacks == []


def test_a_model_file_needs_the_runs_best_weights() -> None:
    from cellsearch.search.trial.model_file import model_file

    data = _data("adding")
    result = train(_model(data, "gru", 0), data, _config("adam"))  # no best weights kept
    assert result.best_weights is None
    unused: Any = None  # the refusal comes before the configuration is read
    with pytest.raises(ValueError, match="best-epoch weights"):
        model_file(result, unused, data.meta, unused, "study", 0, 0.0)
