"""Variable-length sequences: a padded batch scores what its sequences score one by one."""

from __future__ import annotations

from typing import Literal

import pytest
import torch

from cellsearch.models import SequenceModel
from cellsearch.search.tasks import Split, TaskData, TaskMeta
from cellsearch.search.trial.losses import batch_loss
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig

LENGTHS = [3, 7, 5, 1, 7, 4, 2]
T, F, OUT = 7, 3, 4
Loss = Literal["mse", "cross_entropy", "bce"]


def _batch(loss: Loss, head: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs (N, T, F) and targets with garbage (not zeros) in the padding."""
    g = torch.Generator().manual_seed(seed)
    n = len(LENGTHS)
    x = torch.randn(n, T, F, generator=g)
    for i, length in enumerate(LENGTHS):
        x[i, length:] = 1e3  # padding the model must never read
    if loss == "cross_entropy":
        shape = (n,) if head == "last" else (n, T)
        y = torch.randint(0, OUT, shape, generator=g)
    elif loss == "bce":
        y = torch.randint(0, 2, (n, T, OUT), generator=g).float()
    else:
        y = torch.randn((n, OUT) if head == "last" else (n, T, OUT), generator=g)
    return x, y, torch.tensor(LENGTHS)


def _model(head: str) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel("gru", F, 8, output_size=OUT, head=head).eval()  # type: ignore[arg-type]


def _reference(model: SequenceModel, x: torch.Tensor, y: torch.Tensor, loss: Loss, head: str):
    """Run every sequence alone, unpadded; return (predictions, summed loss, loss units).

    A loss unit is a target element for mse, a target for cross-entropy and a step for
    bce, so the mean loss of the whole set weighs every valid step equally.
    """
    predictions, total, units = [], torch.zeros(()), 0
    for i, length in enumerate(LENGTHS):
        prediction = model(x[i : i + 1, :length])  # no lengths: a plain, unpadded sequence
        target = y[i : i + 1] if head == "last" else y[i : i + 1, :length]
        total = total + batch_loss(prediction, target, loss, reduction="sum")
        units += target.numel() // (OUT if loss == "bce" else 1)
        predictions.append(prediction[0])
    return predictions, total, units


CASES = [
    ("last", "cross_entropy"),
    ("last", "mse"),
    ("per_step", "cross_entropy"),
    ("per_step", "mse"),
    ("per_step", "bce"),
]


@pytest.mark.parametrize(("head", "loss"), CASES)
@torch.no_grad()
def test_padded_batch_equals_sequences_run_alone(head: str, loss: Loss) -> None:
    model = _model(head)
    x, y, lengths = _batch(loss, head)
    prediction = model(x, lengths)
    mask = torch.arange(T) < lengths[:, None] if head == "per_step" else None  # (N, T)
    predictions, total, units = _reference(model, x, y, loss, head)
    for i, length in enumerate(LENGTHS):
        padded = prediction[i] if head == "last" else prediction[i, :length]
        torch.testing.assert_close(padded, predictions[i], atol=1e-5, rtol=1e-5)
    mean = batch_loss(prediction, y, loss, mask=mask)
    torch.testing.assert_close(mean, total / units, atol=1e-5, rtol=1e-5)
    summed = batch_loss(prediction, y, loss, reduction="sum", mask=mask)
    torch.testing.assert_close(summed, total, atol=1e-4, rtol=1e-5)


def test_last_head_with_padding_differs_from_reading_the_last_padded_step() -> None:
    model = _model("last")
    x, _, lengths = _batch("cross_entropy", "last")
    with torch.no_grad():
        assert not torch.allclose(model(x, lengths), model(x))


def _task(head: str, loss: Loss, metric: str) -> TaskData:
    x, y, lengths = _batch(loss, head, seed=1)
    if loss == "mse" and head == "last":
        y = y[:, :1]
    output = 1 if loss == "mse" and head == "last" else OUT
    meta = TaskMeta(
        input_size=F, output_size=output, head=head,  # type: ignore[arg-type]
        loss=loss, metric=metric, baseline=1.0, baseline_description="",
    )  # fmt: skip
    split = Split(x, y, lengths)
    return TaskData(meta, split, split, split)


@pytest.mark.parametrize(
    ("head", "loss", "metric"),
    [("last", "cross_entropy", "accuracy"), ("per_step", "cross_entropy", "accuracy"),
     ("per_step", "bce", "nll"), ("last", "mse", "mse")],
)  # fmt: skip
def test_trainer_scores_padded_splits_like_the_reference(
    head: str, loss: Loss, metric: str
) -> None:
    data = _task(head, loss, metric)
    model = SequenceModel("gru", F, 8, output_size=data.meta.output_size, head=head)  # type: ignore[arg-type]
    # A vanishing learning rate: the epoch's train loss is taken on (almost) this model too.
    config = TrainConfig(learning_rate=1e-12, batch_size=3, max_epochs=1, optimizer="sgd")
    result = train(model, data, config)
    model.eval()
    with torch.no_grad():
        predictions, total, units = _reference(model, data.val.x, data.val.y, loss, head)
    assert result.best_val_loss == pytest.approx(float(total) / units, rel=1e-5)
    if metric == "accuracy":
        hits = sum(
            int((p.argmax(-1) == (data.val.y[i] if head == "last" else data.val.y[i, :n])).sum())
            for i, (p, n) in enumerate(zip(predictions, LENGTHS, strict=True))
        )
        assert result.best_val_metric == pytest.approx(hits / units)
    assert result.test_loss == pytest.approx(result.best_val_loss)
    assert result.history[0].train_loss == pytest.approx(result.best_val_loss, rel=1e-5)
