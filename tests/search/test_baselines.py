"""Every task has its trivial baseline and its metric's name, uploads included (issue 30,
item 4): each upload baseline against a value computed by hand."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest

from cellsearch.search.report import ReportContext
from cellsearch.search.report.metric import objective_metric, upload_quantities
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.tasks.baselines import forget_measured, objective_baseline
from cellsearch.search.tasks.file_formats import SequenceDataset
from cellsearch.search.tasks.sequences import forecast_windows, prepare_sequences
from cellsearch.search.tasks.user_data import DatasetTask
from tests.search.test_spec import spec_data

PARTS = {"train": np.arange(4), "val": np.arange(4, 8), "test": np.arange(8, 10)}


def _sequences(y: np.ndarray, kind: str, n_classes: int | None, steps: int = 3) -> Any:
    x = np.random.default_rng(0).normal(size=(len(y), steps, 2)).astype(np.float32)
    lengths = np.full(len(y), steps, dtype=np.int64)
    return prepare_sequences(SequenceDataset(x, lengths, y, kind, n_classes), PARTS)  # type: ignore[arg-type]


def test_classification_the_class_prior_and_the_majority_class() -> None:
    # training labels 0, 0, 0, 1: prior (3/4, 1/4); validation labels 0, 0, 0, 1
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 1])
    meta = _sequences(y, "classification", 2).meta
    prior_ce = -(3 * math.log(0.75) + math.log(0.25)) / 4  # 0.5623, under ln 2
    assert meta.baseline == pytest.approx(prior_ce)
    assert meta.baseline_for("val_metric") == (
        pytest.approx(0.75),
        meta.metric_baseline_description,
    )
    assert "majority class (0)" in str(meta.metric_baseline_description)


def test_classification_falls_back_to_equal_frequencies_where_they_score_lower() -> None:
    # training prior (3/4, 1/4), but validation labels 0, 1, 1, 1: the prior scores
    # -(ln .75 + 3 ln .25) / 4 = 1.11 > ln 2
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1, 0, 1])
    meta = _sequences(y, "classification", 2).meta
    assert meta.baseline == pytest.approx(math.log(2))
    assert meta.metric_baseline == pytest.approx(0.25)  # the majority class 0 is rare here


def test_regression_the_training_mean() -> None:
    # training targets 1..4 (mean 2.5, variance 1.25); validation 2.5, 5, 2.5, 5:
    # squared errors of the mean, in standardised units: (0 + 6.25) / 2 / 1.25 = 2.5
    y = np.array([1, 2, 3, 4, 2.5, 5, 2.5, 5, 0, 0], dtype=np.float32)
    meta = _sequences(y, "regression", None).meta
    assert meta.baseline == pytest.approx(2.5, rel=1e-5)
    assert meta.baseline_for("val_metric")[0] == meta.baseline  # the metric is the MSE


def test_per_step_classes_the_per_step_prior() -> None:
    # training steps: 9 of 0, 3 of 1 -> prior (3/4, 1/4); validation steps 6 of 0, 6 of 1
    train = [[0, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]]
    val = [[0, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 1]]
    y = np.array(train + val + [[0, 0, 0]] * 2)
    meta = _sequences(y, "per_step", 2).meta
    prior_ce = -(6 * math.log(0.75) + 6 * math.log(0.25)) / 12  # 0.837 > ln 2
    assert meta.baseline == pytest.approx(min(prior_ce, math.log(2)))
    assert meta.metric_baseline == pytest.approx(0.5)  # class 0 at every step: 6 of 12


def test_per_step_values_the_training_mean() -> None:
    # per-step values: training steps 0..11 (mean 5.5, variance 143/12); validation all 5.5
    y = np.concatenate([np.arange(12).reshape(4, 3), np.full((4, 3), 5.5), np.zeros((2, 3))])
    meta = _sequences(y.astype(np.float32), "per_step", None).meta
    assert meta.baseline == pytest.approx(0.0, abs=1e-6)  # the mean is exact on validation


def test_forecasting_the_stronger_of_persistence_and_the_mean() -> None:
    # a series alternating 0, 1: persistence misses by 1 every step (4 in standardised
    # units, the training std being 0.5); the training mean misses by 0.5 (1)
    alternating = np.tile([0.0, 1.0], 50)[:, None]
    data = forecast_windows([alternating], window=4, horizon=1, val_fraction=0.2,
                            test_fraction=0.2)  # fmt: skip
    assert data.meta.baseline == pytest.approx(1.0)
    assert data.meta.baseline_description.startswith("predict the training mean")
    # a ramp: persistence misses by one step; the mean by far more
    ramp = np.arange(100, dtype=np.float64)[:, None]
    data = forecast_windows([ramp], window=4, horizon=1, val_fraction=0.2, test_fraction=0.2)
    std = ramp[:60, 0].std()
    assert data.meta.baseline == pytest.approx((1 / std) ** 2, rel=1e-4)
    assert data.meta.baseline_description.startswith("persistence")


def _npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_an_upload_is_measured_and_named_through_its_reader() -> None:
    forget_measured()
    rng = np.random.default_rng(1)
    y = (np.arange(300) % 3 == 0).astype(np.int64)  # classes 0 and 1, two to one
    x = (rng.normal(size=(300, 12, 1)) + y[:, None, None]).astype(np.float32)
    content = _npz(x=x, y=y)
    reads: list[str] = []

    def resolve(dataset_id: str) -> tuple[bytes, str]:
        reads.append(dataset_id)
        return content, "npz"

    task = DatasetTask(kind="dataset", dataset_id="two-sines")  # the kind is inferred
    accuracy = objective_baseline(task, "val_metric", seed=0, resolve_dataset=resolve)
    assert accuracy.value == pytest.approx(2 / 3, abs=0.02)  # the majority class
    assert accuracy.quantities == ("cross_entropy", "accuracy")
    loss = objective_baseline(task, "val_loss", seed=0, resolve_dataset=resolve)
    p = 2 / 3
    assert loss.value == pytest.approx(-(p * math.log(p) + (1 - p) * math.log(1 - p)), abs=0.01)
    objective_baseline(task, "val_metric", seed=0, resolve_dataset=resolve)
    assert reads == ["two-sines", "two-sines"]  # kept once measured
    assert objective_baseline(task, "val_loss", seed=0).value is not None  # kept
    spec = parse_spec(spec_data(
        task={"kind": "dataset", "dataset_id": "two-sines"},
        objective={"metric": "val_metric", "direction": "maximize"},
    ))  # fmt: skip
    context = ReportContext.of(spec, status="completed", baseline=accuracy)
    assert context.metric_label == "validation accuracy"
    assert (context.metric_low, context.metric_high) == (0.0, 1.0)
    assert context.baseline == accuracy.value
    forget_measured()
    unknown = objective_baseline(task, "val_loss", seed=0)  # no reader, nothing kept
    assert unknown.value is None


def test_an_unreadable_upload_gives_no_baseline_and_no_error() -> None:
    forget_measured()

    def gone(dataset_id: str) -> tuple[bytes, str]:
        from cellsearch.search.errors import DatasetError

        raise DatasetError(f"dataset {dataset_id!r} not found")

    task = DatasetTask(kind="dataset", dataset_id="gone")
    found = objective_baseline(task, "val_loss", seed=0, resolve_dataset=gone)
    assert found.value is None and "not found" in found.description


@pytest.mark.parametrize(
    ("kind", "n_classes", "objective", "label"),
    [
        ("classification", 3, "val_metric", "validation accuracy"),
        ("classification", 3, "val_loss", "validation cross-entropy"),
        ("regression", None, "val_metric", "validation MSE"),
        ("per_step", 4, "val_metric", "validation accuracy"),
        ("per_step", None, "val_loss", "validation MSE"),
        ("forecasting", None, "val_loss", "validation MSE"),
    ],
)
def test_an_inferred_upload_is_named_from_its_kind(
    kind: str, n_classes: int | None, objective: str, label: str
) -> None:
    direction = "maximize" if label.endswith("accuracy") else "minimize"
    spec = parse_spec(spec_data(
        task={"kind": "dataset", "dataset_id": "d"},
        objective={"metric": objective, "direction": direction},
    ))  # fmt: skip
    assert objective_metric(spec, upload_quantities(kind, n_classes)).label == label


def test_bundled_and_synthetic_tasks_name_their_baseline_for_either_objective() -> None:
    forget_measured()
    maximize = {"metric": "val_metric", "direction": "maximize"}
    digits = parse_spec(spec_data(task={"kind": "digits"}, objective=maximize))
    context = ReportContext.of(digits, status="completed")
    assert context.metric_label == "validation accuracy"
    assert context.baseline is not None and 0.09 < context.baseline < 0.12  # the majority class
    adding = ReportContext.of(parse_spec(spec_data()), status="completed")
    assert adding.baseline == pytest.approx(1 / 6)


def test_the_stated_preprocessing_turns_raw_data_into_the_models_inputs() -> None:
    """A kept model file carries ``meta.preprocessing``: applied by hand to the raw test
    rows and targets, it gives exactly the prepared test split."""
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(10, 4, 2)).astype(np.float32)
    y = rng.normal(-5.0, 0.5, size=10)
    ds = SequenceDataset(x, np.full(10, 4, dtype=np.int64), y, "regression", None)
    data = prepare_sequences(ds, PARTS)
    stated = data.meta.preprocessing
    assert stated is not None and stated["targets"] is not None
    inputs, targets = stated["inputs"], stated["targets"]
    train = x[PARTS["train"]].reshape(-1, 2).astype(np.float64)
    np.testing.assert_allclose(inputs["mean"], train.mean(0))
    raw = x[PARTS["test"]]
    by_hand = (raw - np.array(inputs["mean"])) / np.array(inputs["scale"])
    np.testing.assert_allclose(data.test.x, by_hand, rtol=1e-5, atol=1e-6)
    y_by_hand = (y[PARTS["test"]] - targets["mean"][0]) / targets["scale"][0]
    np.testing.assert_allclose(data.test.y[:, 0], y_by_hand, rtol=1e-5, atol=1e-6)
    labels = np.array([0, 1] * 5)
    classes = prepare_sequences(SequenceDataset(x, ds.lengths, labels, "classification", 2), PARTS)
    assert classes.meta.preprocessing is not None
    assert classes.meta.preprocessing["targets"] is None  # labels are used as they come


def test_forecast_windows_state_the_one_standardisation_of_inputs_and_targets() -> None:
    series = [np.arange(50, dtype=np.float64)[:, None] * 2.0 + 7.0]
    data = forecast_windows(series, 5, 1, 0.2, 0.2)
    stated = data.meta.preprocessing
    assert stated is not None and stated["inputs"] == stated["targets"]
    np.testing.assert_allclose(stated["inputs"]["mean"], [series[0][:30].mean()])
    first = data.train.x[0, :, 0]
    np.testing.assert_allclose(
        first * stated["inputs"]["scale"][0] + stated["inputs"]["mean"][0],
        series[0][:5, 0],
        rtol=1e-5,
    )
