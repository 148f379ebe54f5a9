"""Uploaded data sets: parsing, every validation error, kind inference, splits, training."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from typing import Any

import numpy as np
import pytest
import torch

from cellsearch.models import SequenceModel
from cellsearch.search.tasks import DatasetTask, TaskData, build_task
from cellsearch.search.tasks.file_formats import (
    DatasetError,
    SequenceDataset,
    parse_upload,
    summarize,
)
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig

CSV_EXAMPLE = b"""sequence_id,step,f1,f2,label
a,0,0.5,1.2,1
a,1,0.7,1.1,1
b,0,0.1,0.9,0
b,1,0.2,0.8,0
b,2,0.4,0.3,0
"""


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _x(n: int = 6, t: int = 5, f: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, t, f)).astype(np.float32)


def _labels(n: int = 6) -> np.ndarray:
    return np.arange(n) % 2


# --- valid files -------------------------------------------------------------------------


def test_npz_classification_is_inferred() -> None:
    ds = parse_upload(npz(x=_x(), y=_labels()), "npz")
    assert (ds.kind, ds.n_classes) == ("classification", 2)
    assert ds.x.dtype == np.float32 and ds.x.shape == (6, 5, 2)
    assert ds.lengths.dtype == np.int64 and ds.lengths.tolist() == [5] * 6
    assert ds.y is not None and ds.y.dtype == np.int64
    assert summarize(ds) == {
        "n_sequences": 6,
        "max_length": 5,
        "n_features": 2,
        "kind": "classification",
        "n_classes": 2,
    }


def test_two_dimensional_x_has_one_feature_and_padding_is_ignored() -> None:
    x = np.arange(12, dtype=np.float64).reshape(3, 4)
    x[0, 2:] = np.nan  # padding may hold anything
    ds = parse_upload(npz(x=x, lengths=np.array([2, 4, 3])), "npz")
    assert ds.x.shape == (3, 4, 1) and ds.kind == "forecasting" and ds.y is None
    assert ds.x[0, 2:].tolist() == [[0.0], [0.0]] and ds.x[2, 3, 0] == 0.0
    assert ds.lengths.tolist() == [2, 4, 3]


def test_padding_beyond_the_longest_length_is_trimmed() -> None:
    ds = parse_upload(npz(x=_x(t=9), lengths=np.array([3, 4, 2, 4, 1, 2])), "npz")
    assert ds.x.shape == (6, 4, 2) and summarize(ds)["max_length"] == 4


@pytest.mark.parametrize(
    ("y", "kind", "dtype"),
    [
        (np.linspace(0, 1, 6), "regression", np.float32),
        (np.ones((6, 3)), "regression", np.float32),
        (np.tile(np.arange(5) % 3, (6, 1)), "per_step", np.int64),
        (np.zeros((6, 5)) + 0.5, "per_step", np.float32),
    ],
)
def test_kind_inference(y: np.ndarray, kind: str, dtype: type) -> None:
    ds = parse_upload(npz(x=_x(), y=y), "npz")
    assert ds.kind == kind and ds.y is not None and ds.y.dtype == dtype
    assert ds.n_classes == (3 if dtype == np.int64 else None)


def test_explicit_kind_overrides_inference() -> None:
    y = np.arange(6) * 10  # too many distinct integers to be taken for classes
    with pytest.raises(DatasetError, match=r"cannot infer the task kind.*'classification'"):
        parse_upload(npz(x=_x(), y=y), "npz")
    ds = parse_upload(npz(x=_x(), y=y), "npz", kind="regression")
    assert ds.kind == "regression" and ds.y is not None and ds.y.dtype == np.float32


def test_csv_long_format() -> None:
    ds = parse_upload(CSV_EXAMPLE, "csv")
    assert ds.kind == "classification" and ds.n_classes == 2
    assert ds.x.shape == (2, 3, 2) and ds.lengths.tolist() == [2, 3]
    assert ds.y is not None and ds.y.tolist() == [1, 0]
    np.testing.assert_allclose(ds.x[0], [[0.5, 1.2], [0.7, 1.1], [0.0, 0.0]])


def test_csv_rows_may_come_in_any_order() -> None:
    lines = CSV_EXAMPLE.decode().strip().splitlines()
    shuffled = "\n".join([lines[0], lines[5], lines[2], lines[3], lines[1], lines[4]])
    ds = parse_upload(shuffled.encode(), "csv")
    assert ds.lengths.tolist() == [3, 2] and ds.y is not None and ds.y.tolist() == [0, 1]
    np.testing.assert_allclose(ds.x[0, :, 0], [0.1, 0.2, 0.4])


def test_csv_without_label_is_forecasting_and_float_labels_are_regression() -> None:
    no_label = b"sequence_id,step,v\ns,0,1\ns,1,2\ns,2,3\n"
    assert parse_upload(no_label, "csv").kind == "forecasting"
    floats = b"sequence_id,step,v,label\na,0,1,0.5\nb,0,2,1.5\n"
    assert parse_upload(floats, "csv").kind == "regression"


def test_uploads_module_does_not_import_torch() -> None:
    code = "import sys, cellsearch.search.tasks.file_formats; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- every validation error --------------------------------------------------------------


def _nan_x() -> np.ndarray:
    x = _x()
    x[1, 2, 0] = x[3, 0, 1] = np.nan
    return x


def _inf_x() -> np.ndarray:
    x = _x()
    x[0, 0, 0] = np.inf
    return x


def _object_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.array([[1.0], [1.0, 2.0]], dtype=object))
    return buffer.getvalue()


def _bomb() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros((100, 100, 10)))
    return buffer.getvalue()


NPZ_ERRORS = {
    "x 1-d": (
        npz(x=np.ones(5)), {}, r"x must have shape \(N, T, F\) or \(N, T\); got shape \(5,\)"
    ),
    "x 4-d": (npz(x=np.ones((2, 3, 4, 5))), {}, "x must have shape"),
    "x strings": (
        npz(x=np.array([["a", "b"]])), {}, "x must be a real numeric array; got dtype <U1"
    ),
    "x complex": (npz(x=np.ones((2, 3), dtype=complex)), {}, "real numeric"),
    "x object": (_object_npz(), {}, "not a valid NPZ file: Object arrays cannot be loaded"),
    "x nan": (npz(x=_nan_x(), y=_labels()), {}, "x has 2 NaN values"),
    "x inf": (npz(x=_inf_x(), y=_labels()), {}, "x has 1 infinite value"),
    "x empty": (npz(x=np.zeros((0, 5, 2))), {}, r"empty data: x has shape \(0, 5, 2\)"),
    "x no steps": (npz(x=np.zeros((3, 0))), {}, "empty data"),
    "no x": (npz(y=_labels()), {}, "no array named 'x'"),
    "unknown array": (
        npz(x=_x(), labels=_labels()), {}, "unexpected arrays in the NPZ file: labels"
    ),
    "labels negative": (
        npz(x=_x(), y=_labels() - 1), {}, "labels must be integers 0..K-1; found -1"
    ),
    "labels fractional": (
        npz(x=_x(), y=np.full(6, 0.5)), {"kind": "classification"},
        "labels must be integers 0..K-1; found 0.5",
    ),
    "labels huge": (
        npz(x=_x(), y=np.array([0, 1, 0, 1, 0, 10**6])), {"kind": "classification"},
        "K <= 10000",
    ),
    "one class": (npz(x=_x(), y=np.zeros(6, dtype=int)), {}, "at least 2 classes"),
    "y nan": (npz(x=_x(), y=np.array([0.1, np.nan, 0, 0, 0, 0])), {}, "y has 1 NaN value"),
    "y count": (npz(x=_x(), y=np.array([0, 1, 0, 1])), {}, "y has 4 entries but x has 6 sequences"),
    "y strings": (npz(x=_x(), y=np.array(list("abcdef"))), {"kind": "classification"}, "y must be"),
    "y per_step shape": (
        npz(x=_x(), y=np.zeros((6, 4))), {"kind": "per_step"},
        r"per_step y must have shape \(N, T\)=\(6, 5\); got \(6, 4\)",
    ),
    "y classification 2-d": (
        npz(x=_x(), y=np.zeros((6, 2), dtype=int)), {"kind": "classification"},
        r"classification y must have shape \(N,\)",
    ),
    "y missing": (npz(x=_x()), {"kind": "regression"}, "a regression data set needs targets"),
    "y for forecasting": (npz(x=_x(), y=_labels()), {"kind": "forecasting"}, "takes no y"),
    "lengths zero": (npz(x=_x(), lengths=np.array([5, 0, 5, 5, 5, 5])), {},
                     "lengths must be in 1..T=5; sequence 1 has length 0"),
    "lengths too long": (npz(x=_x(), lengths=np.array([5, 5, 6, 5, 5, 5])), {},
                         "sequence 2 has length 6"),
    "lengths count": (npz(x=_x(), lengths=np.array([5, 5])), {},
                      "lengths has 2 entries but x has 6 sequences"),
    "lengths fractional": (npz(x=_x(), lengths=np.full(6, 2.5)), {}, "lengths must be integers"),
    "lengths 2-d": (npz(x=_x(), lengths=np.ones((6, 1), dtype=int)), {}, "1-d integer array"),
    "ambiguous": (npz(x=_x(), y=np.arange(6) * 7), {}, "cannot infer the task kind"),
    "unknown kind": (npz(x=_x()), {"kind": "ranking"}, "unknown task kind 'ranking'"),
    "too big": (npz(x=_x()), {"max_bytes": 100}, "exceeds the limit of 100 bytes"),
    "too big unpacked": (_bomb(), {"max_bytes": 50_000}, "decompressed"),
    "garbage": (b"\x00\x01garbage bytes" * 10, {}, "not a valid NPZ file"),
    "corrupt zip": (b"PK\x03\x04" + b"\x00" * 100, {}, "not a valid NPZ file"),
    "npy not npz": (b"\x93NUMPY" + b"\x00" * 50, {}, "not a valid NPZ file"),
    "empty file": (b"", {}, "empty data"),
}  # fmt: skip


@pytest.mark.parametrize(("content", "options", "message"), NPZ_ERRORS.values(), ids=NPZ_ERRORS)
def test_npz_errors(content: bytes, options: dict[str, Any], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_upload(content, "npz", **options)


CSV_ERRORS = {
    "not utf-8": (b"\xff\xfe\xfa garbage \x80\x81", "not a valid CSV file"),
    "nul bytes": (b"sequence_id,step,v\n\x00,\x00", "not a valid CSV file"),
    "missing columns": (b"sequence_id,v\na,1\n", "missing required columns: step"),
    "no features": (b"sequence_id,step,label\na,0,1\n", "no feature columns"),
    "header only": (b"sequence_id,step,v\n", "empty data: the CSV file has a header but no rows"),
    "blank": (b"\n\n", "empty data"),
    "duplicate step": (
        b"sequence_id,step,v\na,0,1\na,1,2\na,1,3\n",
        r"duplicate \(sequence_id, step\) pair \('a', 1\)",
    ),
    "not a number": (
        b"sequence_id,step,v\na,0,1\na,1,abc\n", "CSV line 3, column 'v': 'abc' is not a number"
    ),
    "step not integer": (
        b"sequence_id,step,v\na,0.5,1\n", "column 'step': '0.5' is not an integer"
    ),
    "ragged": (b"sequence_id,step,v\na,0,1,7\n", "CSV line 2 has 4 fields; the header has 3"),
    "label varies": (
        b"sequence_id,step,v,label\na,0,1,0\na,1,2,1\nb,0,1,1\n",
        "label must be constant within a sequence; 'a' has 0, 1",
    ),
    "label text": (b"sequence_id,step,v,label\na,0,1,cat\nb,0,1,dog\n", "found 'cat'"),
    "label negative": (b"sequence_id,step,v,label\na,0,1,-1\nb,0,1,1\n", "0..K-1; found -1"),
    "nan feature": (b"sequence_id,step,v\na,0,nan\na,1,1\n", "x has 1 NaN value"),
    "duplicate column": (b"sequence_id,step,v,v\na,0,1,1\n", "duplicate column names"),
}  # fmt: skip


@pytest.mark.parametrize(("content", "message"), CSV_ERRORS.values(), ids=CSV_ERRORS)
def test_csv_errors(content: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_upload(content, "csv")


def test_unknown_format() -> None:
    with pytest.raises(DatasetError, match="unknown format 'parquet'"):
        parse_upload(b"abc", "parquet")  # type: ignore[arg-type]


# --- building tasks from uploads ---------------------------------------------------------


def _signal_upload(n: int = 240, t: int = 16, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """Variable-length sequences whose class is the sign of their mean (3 features)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    lengths = rng.integers(4, t + 1, size=n)
    x = rng.normal(size=(n, t, 3)) + np.where(y == 1, 0.8, -0.8)[:, None, None]
    x[np.arange(t) >= lengths[:, None]] = 0.0
    return npz(x=x.astype(np.float32), lengths=lengths, y=y), y


def _build(content: bytes, seed: int = 0, fmt: str = "npz", **spec: Any) -> TaskData:
    task = DatasetTask(kind="dataset", dataset_id="d1", **spec)
    return build_task(task, seed, resolve_dataset=lambda dataset_id: (content, fmt))


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def test_classification_upload_splits_are_stratified_disjoint_and_seeded() -> None:
    content, y = _signal_upload()
    data = _build(content, val_fraction=0.2, test_fraction=0.2)
    sizes = [len(data.train.x), len(data.val.x), len(data.test.x)]
    assert sum(sizes) == 240 and sizes[1] == pytest.approx(48, abs=2)
    for labels in (data.train.y, data.val.y, data.test.y):
        share = float(labels.float().mean())
        assert abs(share - y.mean()) < 0.05
    assert data.train.lengths is not None and data.test.lengths is not None
    assert not _rows(data.test.x) & _rows(data.train.x)  # no test sequence in train
    assert not _rows(data.val.x) & _rows(data.train.x)
    again, other = _build(content, val_fraction=0.2, test_fraction=0.2), _build(content, seed=1)
    assert torch.equal(data.test.x, again.test.x) and torch.equal(data.val.y, again.val.y)
    assert other.test.lengths is not None
    assert not torch.equal(data.test.lengths, other.test.lengths)


def test_standardisation_is_fitted_on_train_only() -> None:
    content, _ = _signal_upload()
    data = _build(content)
    assert data.train.lengths is not None
    valid = torch.arange(16) < data.train.lengths[:, None]
    train_steps = data.train.x[valid]  # (steps, 3)
    torch.testing.assert_close(train_steps.mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(train_steps.std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    assert float(data.train.x[~valid].abs().max()) == 0.0  # padding stays zero
    assert data.meta.metric == "accuracy"
    # the class prior of the training split, or ln 2 where that scores lower on validation
    labels = data.train.y.numpy()
    prior = np.bincount(labels, minlength=2) / len(labels)
    prior_ce = float(-np.log(prior[data.val.y.numpy()]).mean())
    assert data.meta.baseline == pytest.approx(min(prior_ce, np.log(2)))


def test_regression_and_per_step_uploads() -> None:
    x = _x(n=30, t=6)
    data = _build(npz(x=x, y=x[:, :, 0].sum(1)))
    assert data.train.y.shape[1:] == (1,) and data.meta.loss == "mse" and data.meta.head == "last"
    assert abs(float(data.train.y.mean())) < 1e-5  # targets standardised on train
    per_step = _build(npz(x=x, y=(x[:, :, 1] > 0).astype(np.int64)))
    assert per_step.meta.head == "per_step" and per_step.train.y.shape[1:] == (6,)
    assert per_step.meta.output_size == 2 and per_step.meta.loss == "cross_entropy"


def test_forecasting_upload_is_split_in_time() -> None:
    series = np.arange(100, dtype=np.float64)[None, :, None]  # one series, rising
    data = _build(npz(x=series), window=5, horizon=2, val_fraction=0.2, test_fraction=0.2)
    assert data.train.x.shape[1:] == (5, 1) and data.train.y.shape[1:] == (2,)
    assert float(data.train.y.max()) < float(data.val.y.min())
    assert float(data.val.y.max()) < float(data.test.y.min())
    assert data.meta.baseline > 0 and data.meta.head == "last" and data.meta.output_size == 2


def test_csv_upload_builds() -> None:
    rows = ["sequence_id,step,v,label"] + [
        f"s{i},{k},{(i % 2) * 2 - 1 + 0.1 * k},{i % 2}" for i in range(20) for k in range(3)
    ]
    data = _build("\n".join(rows).encode(), fmt="csv")
    assert (
        data.meta.output_size == 2
        and sum(len(d) for d in (data.train.y, data.val.y, data.test.y)) == 20
    )


def test_missing_resolver_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no dataset resolver"):
        build_task(DatasetTask(kind="dataset", dataset_id="d1"), 0)


def test_training_on_an_uploaded_npz_beats_the_baseline() -> None:
    content, _ = _signal_upload()
    data = _build(content)
    torch.manual_seed(0)
    model = SequenceModel("gru", data.meta.input_size, 16, output_size=data.meta.output_size)
    result = train(model, data, TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=8))
    assert result.best_val_loss < 0.5 * data.meta.baseline
    assert result.test_metric > 0.9


def test_dataset_type_is_frozen() -> None:
    ds = parse_upload(CSV_EXAMPLE, "csv")
    assert isinstance(ds, SequenceDataset)
    with pytest.raises(AttributeError):
        ds.kind = "regression"  # type: ignore[misc]


def test_zip_without_npy_members() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.npy", b"not an array")
    with pytest.raises(DatasetError, match="not a valid NPZ file"):
        parse_upload(buffer.getvalue(), "npz")
