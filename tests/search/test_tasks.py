"""Tests of the built-in tasks: specs, shapes, determinism, targets and baselines."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from pydantic import TypeAdapter, ValidationError

from cellsearch.search.tasks import (
    TASKS,
    AddingTask,
    CopyTask,
    DatasetTask,
    DigitsTask,
    TaskData,
    TaskSpec,
    baseline_of,
    build_task,
    get_task_kind,
    prepare_task,
)
from cellsearch.search.tasks.synthetic import copy_baseline, digits_split_indices

SPLITS = ("train", "val", "test")


def _tensors(data: TaskData) -> list[torch.Tensor]:
    return [getattr(data.split(split), part) for split in SPLITS for part in ("x", "y")]


def _small_specs() -> list[AddingTask | CopyTask | DigitsTask]:
    return [
        AddingTask(kind="adding", seq_len=12, n_train=40, n_val=20, n_test=30),
        CopyTask(kind="copy", seq_len=5, n_train=40, n_val=20, n_test=30),
        DigitsTask(kind="digits"),
        DigitsTask(kind="digits", mode="pixels"),
    ]


# --- specs -----------------------------------------------------------------------------


def test_task_spec_is_discriminated_on_kind() -> None:
    adapter = TypeAdapter(TaskSpec)
    assert isinstance(adapter.validate_python({"kind": "adding"}), AddingTask)
    assert isinstance(adapter.validate_python({"kind": "copy", "seq_len": 7}), CopyTask)
    assert isinstance(adapter.validate_python({"kind": "digits", "mode": "pixels"}), DigitsTask)
    with pytest.raises(ValidationError):
        adapter.validate_python({"kind": "mnist"})


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "adding", "seq_len": 1},
        {"kind": "adding", "n_train": 0},
        {"kind": "adding", "unknown": 1},
        {"kind": "copy", "seq_len": 0},
        {"kind": "digits", "mode": "columns"},
        {"kind": "digits", "val_fraction": 0.5, "test_fraction": 0.5},
    ],
)
def test_invalid_specs_are_rejected(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(TaskSpec).validate_python(payload)


def test_json_schema_has_descriptions() -> None:
    schema = TypeAdapter(TaskSpec).json_schema()
    adding = schema["$defs"]["AddingTask"]
    assert adding["additionalProperties"] is False
    assert all("description" in field for field in adding["properties"].values())


def test_sequence_length_and_dataset_size() -> None:
    adding = AddingTask(kind="adding", seq_len=50, n_train=10, n_val=5, n_test=3)
    assert (adding.sequence_length(), adding.dataset_size()) == (50, 18)
    copy = CopyTask(kind="copy", seq_len=100, n_train=10, n_val=5, n_test=3)
    assert (copy.sequence_length(), copy.dataset_size()) == (120, 18)
    assert DigitsTask(kind="digits").sequence_length() == 8
    assert DigitsTask(kind="digits", mode="pixels").sequence_length() == 64
    assert DigitsTask(kind="digits").dataset_size() == 1797


def test_specs_import_without_torch() -> None:
    code = "import sys, cellsearch.search.tasks.synthetic; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_task_infos_cover_every_kind() -> None:
    kinds = {"adding", "copy", "digits", "ucr", "forecast", "chorales", "dataset"}
    assert set(TASKS) == kinds
    assert all(entry.kind == kind and entry.description for kind, entry in TASKS.items())
    assert all(entry.spec.model_fields["kind"].annotation is not str for entry in TASKS.values())
    union = TypeAdapter(TaskSpec).json_schema()["$defs"]
    assert {
        d["properties"]["kind"]["const"]
        for d in union.values()
        if "kind" in d.get("properties", {})
    } == kinds


def test_unknown_task_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown task kind 'nope'; known: adding, copy"):
        get_task_kind("nope")
    assert get_task_kind("copy") is TASKS["copy"]


def test_registry_baselines_match_the_built_data() -> None:
    """The closed-form baseline (no data) agrees with the one measured on the built data;
    where only the data tell (the split's class frequencies), none is given without them."""
    copy = CopyTask(kind="copy", seq_len=30, n_train=4, n_val=4, n_test=4)
    assert baseline_of(copy).value == pytest.approx(prepare_task(copy, 0).meta.baseline)
    assert baseline_of(DigitsTask(kind="digits")).value is None
    assert baseline_of(DatasetTask(kind="dataset", dataset_id="x")).value is None


def test_task_specs_import_without_torch() -> None:
    code = "import sys, cellsearch.search.tasks.catalog; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- shapes, dtypes, determinism ---------------------------------------------------------


@pytest.mark.parametrize("spec", _small_specs(), ids=lambda s: f"{s.kind}")
def test_shapes_and_dtypes(spec: AddingTask | CopyTask | DigitsTask) -> None:
    data = build_task(spec, seed=0)
    T = spec.sequence_length()
    for split in SPLITS:
        x, y = data.split(split).x, data.split(split).y
        assert x.dtype == torch.float32
        assert x.shape[1:] == (T, data.meta.input_size)
        assert y.shape[0] == x.shape[0]
        if data.meta.loss == "mse":
            assert y.dtype == torch.float32 and y.shape[1:] == (data.meta.output_size,)
        elif data.meta.head == "per_step":
            assert y.dtype == torch.int64 and y.shape[1:] == (T,)
        else:
            assert y.dtype == torch.int64 and y.ndim == 1
        if data.meta.loss == "cross_entropy":
            assert int(y.min()) >= 0 and int(y.max()) < data.meta.output_size
    if not isinstance(spec, DigitsTask):
        sizes = tuple(data.split(s).x.shape[0] for s in SPLITS)
        assert sizes == (spec.n_train, spec.n_val, spec.n_test)


@pytest.mark.parametrize("spec", _small_specs()[:3], ids=lambda s: f"{s.kind}")
def test_same_seed_same_data_other_seed_other_data(
    spec: AddingTask | CopyTask | DigitsTask,
) -> None:
    first, again, other = build_task(spec, 3), build_task(spec, 3), build_task(spec, 4)
    assert all(torch.equal(a, b) for a, b in zip(_tensors(first), _tensors(again), strict=True))
    assert not torch.equal(first.train.x, other.train.x)
    assert not torch.equal(first.val.x, other.val.x)


def test_splits_of_a_synthetic_task_differ() -> None:
    data = build_task(AddingTask(kind="adding", seq_len=10, n_train=5, n_val=5, n_test=5), 0)
    assert not torch.equal(data.train.x, data.val.x)
    assert not torch.equal(data.val.x, data.test.x)


def test_validation_set_does_not_depend_on_n_train() -> None:
    small = build_task(AddingTask(kind="adding", seq_len=10, n_train=5, n_val=8, n_test=5), 0)
    large = build_task(AddingTask(kind="adding", seq_len=10, n_train=50, n_val=8, n_test=5), 0)
    assert torch.equal(small.val.x, large.val.x)


# --- adding ------------------------------------------------------------------------------


def test_adding_targets_are_the_sum_of_the_marked_values() -> None:
    T = 16
    data = build_task(AddingTask(kind="adding", seq_len=T, n_train=500, n_val=5, n_test=5), 1)
    values, markers = data.train.x[..., 0], data.train.x[..., 1]  # (N, T)
    assert float(values.min()) >= 0.0 and float(values.max()) < 1.0
    assert torch.all(markers.sum(dim=1) == 2)
    assert torch.all(markers[:, : T // 2].sum(dim=1) == 1)
    assert torch.all(markers[:, T // 2 :].sum(dim=1) == 1)
    expected = (values * markers).sum(dim=1, keepdim=True)
    torch.testing.assert_close(data.train.y, expected)


def test_adding_baseline_is_one_sixth_within_sampling_error() -> None:
    n_val = 40_000
    spec = AddingTask(kind="adding", seq_len=4, n_train=1, n_val=n_val, n_test=1)
    data = build_task(spec, 0)
    assert data.meta.baseline == pytest.approx(float(((data.val.y - 1.0) ** 2).mean()))
    # (S - 1)^2 with S the sum of two U(0,1): mean 1/6, variance 7/180 (4th moment 1/15).
    standard_error = math.sqrt((1 / 15 - 1 / 36) / n_val)
    assert abs(data.meta.baseline - 1 / 6) < 4 * standard_error
    assert (data.meta.metric, data.meta.loss) == ("mse", "mse")


# --- copy --------------------------------------------------------------------------------


def test_copy_inputs_and_targets_follow_the_layout() -> None:
    T = 7
    data = build_task(CopyTask(kind="copy", seq_len=T, n_train=64, n_val=4, n_test=4), 2)
    assert data.train.x.sum(dim=-1).eq(1).all()  # one-hot
    tokens = data.train.x.argmax(dim=-1)  # (N, T+20)
    symbols = tokens[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    assert torch.all(tokens[:, 10 : T + 9] == 0)  # T-1 blanks
    assert torch.all(tokens[:, T + 9] == 9)  # the marker
    assert torch.all(tokens[:, T + 10 :] == 0)  # 10 blanks
    assert torch.all(data.train.y[:, : T + 10] == 0)
    assert torch.equal(data.train.y[:, T + 10 :], symbols)
    assert (data.meta.input_size, data.meta.output_size, data.meta.head) == (10, 9, "per_step")


@pytest.mark.parametrize("T", [1, 100, 200, 1000])
def test_copy_baseline_is_the_memoryless_cross_entropy(T: int) -> None:
    spec = CopyTask(kind="copy", seq_len=T, n_train=1, n_val=50, n_test=1)
    data = build_task(spec, 0)
    assert data.meta.baseline == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)
    assert copy_baseline(T) == data.meta.baseline
    # The memoryless predictor: blank for T+10 steps, then uniform over the 8 symbols.
    n, length = data.val.y.shape
    logits = torch.full((n, length, 9), -1e4, dtype=torch.float64)
    logits[:, : T + 10, 0] = 0.0
    logits[:, T + 10 :, 1:] = 0.0
    ce = F.cross_entropy(logits.reshape(-1, 9), data.val.y.reshape(-1))
    assert float(ce) == pytest.approx(data.meta.baseline, rel=1e-9)


def test_copy_published_baselines() -> None:
    assert copy_baseline(100) == pytest.approx(0.1733, abs=1e-4)
    assert copy_baseline(200) == pytest.approx(0.0945, abs=1e-4)
    assert copy_baseline(1000) == pytest.approx(0.0204, abs=1e-4)


# --- digits ------------------------------------------------------------------------------


def test_digits_splits_are_stratified_disjoint_and_complete() -> None:
    spec = DigitsTask(kind="digits", val_fraction=0.2, test_fraction=0.1)
    indices = digits_split_indices(spec, seed=0)
    everything = torch.cat([torch.from_numpy(indices[s]) for s in SPLITS])
    assert len(everything) == 1797 and len(torch.unique(everything)) == 1797
    assert len(indices["test"]) == pytest.approx(0.1 * 1797, abs=1)
    assert len(indices["val"]) == pytest.approx(0.2 * 1797, abs=1)
    data = build_task(spec, seed=0)
    for split in SPLITS:
        counts = torch.bincount(data.split(split).y, minlength=10)
        assert counts.numel() == 10 and int(counts.min()) > 0
        share = counts / counts.sum()
        assert float((share - 0.1).abs().max()) < 0.02  # stratified: classes are ~balanced


def test_no_test_image_is_in_the_training_set() -> None:
    data = build_task(DigitsTask(kind="digits"), seed=5)
    train = data.train.x.reshape(len(data.train.x), -1)
    test = data.test.x.reshape(len(data.test.x), -1)
    distances = torch.cdist(test, train)  # (N_test, N_train)
    assert float(distances.min()) > 0.0


def test_digits_scaling_modes_and_baselines() -> None:
    rows = build_task(DigitsTask(kind="digits"), seed=0)
    pixels = build_task(DigitsTask(kind="digits", mode="pixels"), seed=0)
    assert float(rows.train.x.min()) == 0.0 and float(rows.train.x.max()) == 1.0
    torch.testing.assert_close(rows.train.x.reshape(-1, 64), pixels.train.x.reshape(-1, 64))
    assert rows.meta.metric == "accuracy"
    # the training class frequencies, scored by cross-entropy on the validation split:
    # slightly under ln 10 (the classes are nearly balanced)
    prior = torch.bincount(rows.train.y, minlength=10).double() / len(rows.train.y)
    logits = prior.log().float().expand(len(rows.val.y), 10)
    assert float(F.cross_entropy(logits, rows.val.y)) == pytest.approx(rows.meta.baseline)
    assert rows.meta.baseline < math.log(10)
    majority = int(torch.argmax(torch.bincount(rows.train.y, minlength=10)))
    accuracy = float((rows.val.y == majority).double().mean())
    assert rows.meta.baseline_for("val_metric")[0] == pytest.approx(accuracy)
    assert rows.meta.baseline_for("val_loss")[0] == rows.meta.baseline
