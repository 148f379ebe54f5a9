"""Bundled data sets: UCR/UEA archives, forecasting series and Bach chorales."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from cellsearch.models import SequenceModel
from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks import TaskData, TaskSpec, baseline_of, build_task
from cellsearch.search.tasks import package_files as datasets
from cellsearch.search.tasks.bundled import (
    ChoralesTask,
    ForecastTask,
    SeriesName,
    UcrName,
    UcrTask,
)
from cellsearch.search.tasks.package_files import (
    CHORALES_N_PIECES,
    UCR_DATASETS,
    load_series,
    load_ucr,
)
from cellsearch.search.trial.trainer import train
from cellsearch.search.trial_config import TrainConfig

HAVE_AEON = importlib.util.find_spec("aeon") is not None
HAVE_STATSMODELS = importlib.util.find_spec("statsmodels") is not None
HAVE_MUSIC21 = importlib.util.find_spec("music21") is not None
needs_aeon = pytest.mark.skipif(not HAVE_AEON, reason="needs the 'datasets' extra (aeon)")
needs_music21 = pytest.mark.skipif(not HAVE_MUSIC21, reason="needs the 'datasets' extra (music21)")


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


# --- specs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"kind": "ucr", "name": "JapaneseVowels"}, UcrTask),
        ({"kind": "forecast", "name": "sunspots", "window": 20, "horizon": 3}, ForecastTask),
        ({"kind": "chorales", "max_pieces": 10}, ChoralesTask),
    ],
)
def test_bundled_specs_are_part_of_the_task_union(payload: dict[str, object], cls: type) -> None:
    assert isinstance(TypeAdapter(TaskSpec).validate_python(payload), cls)


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": "ucr", "name": "MNIST"},
        {"kind": "ucr", "name": "GunPoint", "extra": 1},
        {"kind": "forecast", "name": "airline", "window": 0},
        {"kind": "forecast", "name": "airline", "window": 120},  # leaves no training window
        {"kind": "forecast", "name": "lynx"},
        {"kind": "forecast", "name": "airline", "horizon": 20, "val_fraction": 0.1},
        {"kind": "chorales", "max_pieces": 2},
    ],
)
def test_invalid_bundled_specs(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(TaskSpec).validate_python(payload)


def test_spec_limits_are_known_without_loading_data() -> None:
    vowels = UcrTask(kind="ucr", name="JapaneseVowels")
    assert (vowels.sequence_length(), vowels.dataset_size()) == (29, 640)
    airline = ForecastTask(kind="forecast", name="airline", window=12, horizon=1)
    assert (airline.sequence_length(), airline.dataset_size()) == (12, 132)
    chorales = ChoralesTask(kind="chorales", max_pieces=5)
    assert chorales.dataset_size() == 5 and chorales.sequence_length() > 100
    assert ChoralesTask(kind="chorales").dataset_size() == CHORALES_N_PIECES
    schema = TypeAdapter(TaskSpec).json_schema()["$defs"]
    for name in ("UcrTask", "ForecastTask", "ChoralesTask", "DatasetTask"):
        assert schema[name]["additionalProperties"] is False
        assert all("description" in f for f in schema[name]["properties"].values())


def test_baselines_without_data() -> None:
    """Class frequencies need the data: no closed form for UCR sets or chorales."""
    assert baseline_of(UcrTask(kind="ucr", name="JapaneseVowels")).value is None
    assert baseline_of(ChoralesTask(kind="chorales")).value is None


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        datasets.importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("aeon", "statsmodels", "music21") else real(name, *a),
    )
    for spec in (
        UcrTask(kind="ucr", name="GunPoint"),
        ForecastTask(kind="forecast", name="sunspots"),
        ChoralesTask(kind="chorales", max_pieces=3),
    ):
        with pytest.raises(DatasetError, match=r"pip install 'cellsearch\[datasets\]'"):
            build_task(spec, 0)
    assert baseline_of(ForecastTask(kind="forecast", name="airline")).value is None


# --- UCR/UEA -----------------------------------------------------------------------------


@needs_aeon
@pytest.mark.parametrize("name", sorted(UCR_DATASETS))
def test_ucr_shapes_classes_and_splits(name: UcrName) -> None:
    info = UCR_DATASETS[name]
    archive = load_ucr(name)
    assert (len(archive["train"][0]), len(archive["test"][0])) == (info.n_train, info.n_test)
    for split in ("train", "test"):
        series, labels = archive[split]
        assert sorted(set(labels.tolist())) == list(range(info.n_classes))
        assert {s.shape[1] for s in series} == {info.n_features}
    lengths = {len(s) for split in archive.values() for s in split[0]}
    assert max(lengths) == info.max_length and (len(lengths) > 1) == info.variable_length

    data = build_task(UcrTask(kind="ucr", name=name), seed=0)
    assert len(data.train.x) + len(data.val.x) == info.n_train
    assert len(data.test.x) == info.n_test
    assert data.train.x.shape[1:] == (info.max_length, info.n_features)
    assert (data.meta.output_size, data.meta.head, data.meta.loss) == (
        info.n_classes,
        "last",
        "cross_entropy",
    )
    assert (data.train.lengths is not None) == info.variable_length
    assert torch.equal(data.test.y, torch.from_numpy(archive["test"][1]))  # archive's own test
    assert set(data.val.y.tolist()) == set(range(info.n_classes)) or len(data.val.y) < 10
    # the training class frequencies, or equal ones (ln K) where those score lower
    prior = torch.bincount(data.train.y, minlength=info.n_classes).double() / len(data.train.y)
    prior_ce = float(-prior[data.val.y].log().mean())
    assert data.meta.baseline == pytest.approx(min(prior_ce, math.log(info.n_classes)))


@needs_aeon
def test_japanese_vowels_is_variable_length_with_nine_balanced_training_classes() -> None:
    data = build_task(UcrTask(kind="ucr", name="JapaneseVowels"), seed=0)
    assert data.train.lengths is not None and data.test.lengths is not None
    assert int(data.test.lengths.min()) == 7 and int(data.test.lengths.max()) == 29
    train_counts = torch.bincount(torch.cat([data.train.y, data.val.y]), minlength=9)
    assert train_counts.tolist() == [30] * 9
    val_counts = torch.bincount(data.val.y, minlength=9)
    assert val_counts.tolist() == [6] * 9  # stratified: 20% of each class
    for x, lengths in ((data.train.x, data.train.lengths), (data.test.x, data.test.lengths)):
        padding = torch.arange(29) >= lengths[:, None]
        assert float(x[padding].abs().max()) == 0.0


@needs_aeon
@pytest.mark.parametrize("name", ["JapaneseVowels", "ItalyPowerDemand"])
def test_ucr_no_test_sequence_in_train_and_seeded_validation(name: UcrName) -> None:
    data = build_task(UcrTask(kind="ucr", name=name), seed=0)
    assert not _rows(data.test.x) & _rows(data.train.x)
    assert not _rows(data.val.x) & _rows(data.train.x)
    again, other = (build_task(UcrTask(kind="ucr", name=name), seed=s) for s in (0, 1))
    assert torch.equal(data.val.x, again.val.x) and torch.equal(data.test.x, again.test.x)
    assert not torch.equal(data.val.x, other.val.x)
    assert torch.equal(data.test.y, other.test.y)  # the archive's test set never moves


@needs_aeon
def test_ucr_standardisation_uses_training_statistics() -> None:
    data = build_task(UcrTask(kind="ucr", name="JapaneseVowels"), seed=0)
    assert data.train.lengths is not None and data.test.lengths is not None
    train_steps = data.train.x[torch.arange(29) < data.train.lengths[:, None]]
    torch.testing.assert_close(train_steps.mean(0), torch.zeros(12), atol=1e-4, rtol=0)
    torch.testing.assert_close(
        train_steps.std(0, unbiased=False), torch.ones(12), atol=1e-4, rtol=0
    )
    test_steps = data.test.x[torch.arange(29) < data.test.lengths[:, None]]
    assert float(test_steps.mean(0).abs().max()) > 1e-3  # fitted on train, not on test


@needs_aeon
def test_gru_beats_the_baseline_on_japanese_vowels() -> None:
    data = build_task(UcrTask(kind="ucr", name="JapaneseVowels"), seed=0)
    torch.manual_seed(0)
    model = SequenceModel("gru", data.meta.input_size, 32, output_size=data.meta.output_size)
    config = TrainConfig(learning_rate=1e-2, batch_size=32, max_epochs=5)
    result = train(model, data, config)
    majority = torch.bincount(data.train.y).argmax()
    chance = float((data.test.y == majority).float().mean())  # the majority-class guess
    assert result.best_val_loss < 0.5 * data.meta.baseline
    assert result.test_metric > 0.8 > chance


@needs_aeon
def test_variable_length_training_is_deterministic() -> None:
    data = build_task(UcrTask(kind="ucr", name="JapaneseVowels"), seed=0)

    def run(seed: int) -> list[float]:
        torch.manual_seed(0)
        model = SequenceModel("lstm", data.meta.input_size, 8, output_size=data.meta.output_size)
        config = TrainConfig(learning_rate=1e-2, batch_size=64, max_epochs=2, seed=seed)
        return [e.val_loss for e in train(model, data, config).history]

    assert run(3) == run(3) != run(4)


# --- forecasting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "length"),
    [
        pytest.param("airline", 144, marks=needs_aeon),
        pytest.param(
            "sunspots",
            309,
            marks=pytest.mark.skipif(not HAVE_STATSMODELS, reason="needs statsmodels"),
        ),
    ],
)
@pytest.mark.parametrize("horizon", [1, 4])
def test_forecast_windows_are_chronological(name: SeriesName, length: int, horizon: int) -> None:
    series = load_series(name)
    assert series.shape == (length, 1)
    spec = ForecastTask(kind="forecast", name=name, window=10, horizon=horizon)
    data = build_task(spec, seed=0)
    assert data.train.x.shape[1:] == (10, 1) and data.train.y.shape[1:] == (horizon,)
    assert (data.meta.head, data.meta.loss, data.meta.output_size, data.train.lengths) == (
        "last", "mse", horizon, None,
    )  # fmt: skip
    train_end = round(length * 0.7)
    train_part = series[:train_end, 0]
    mean, std = train_part.mean(), train_part.std()
    z = torch.from_numpy(((series[:, 0] - mean) / std).astype(np.float32))
    # The next-step targets of the training windows are the series, in order, up to the cut.
    torch.testing.assert_close(data.train.y[:, 0], z[10 : train_end - horizon + 1])
    val_end = round(length * 0.85)
    torch.testing.assert_close(data.val.y[:, 0], z[train_end : val_end - horizon + 1])
    torch.testing.assert_close(data.test.y[:, 0], z[val_end : length - horizon + 1])
    persistence = data.val.x[:, -1, :].repeat(1, horizon)  # (N, horizon)
    last = float(((data.val.y - persistence) ** 2).mean())
    training_mean = float((data.val.y**2).mean())  # the training part's mean is 0 here
    assert data.meta.baseline == pytest.approx(min(last, training_mean), rel=1e-5)
    kept = "persistence" if last <= training_mean else "the training mean"
    assert kept in data.meta.baseline_description
    assert baseline_of(spec).value == pytest.approx(data.meta.baseline)
    assert build_task(spec, seed=5).val.x.equal(data.val.x)  # time decides, not the seed


@needs_aeon
def test_gru_beats_persistence_on_airline() -> None:
    spec = ForecastTask(kind="forecast", name="airline", window=12, horizon=1)
    data = build_task(spec, seed=0)
    torch.manual_seed(0)
    model = SequenceModel("gru", 1, 32, output_size=1)
    result = train(model, data, TrainConfig(learning_rate=1e-2, batch_size=16, max_epochs=25))
    assert result.best_val_loss < data.meta.baseline


# --- chorales ----------------------------------------------------------------------------


def _chorales(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pieces: int = 6) -> TaskData:
    monkeypatch.setenv("CELLSEARCH_CACHE_DIR", str(tmp_path))
    return build_task(ChoralesTask(kind="chorales", max_pieces=pieces), seed=0)


@needs_music21
def test_chorales_piano_rolls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _chorales(tmp_path, monkeypatch)
    assert len(data.train.x) + len(data.val.x) + len(data.test.x) == 6
    assert min(len(data.train.x), len(data.val.x), len(data.test.x)) >= 1
    assert data.train.x.shape[2] == 88 and data.train.y.shape == data.train.x.shape
    assert (data.meta.head, data.meta.loss, data.meta.output_size) == ("per_step", "bce", 88)
    assert set(torch.unique(data.train.x).tolist()) == {0.0, 1.0}
    assert data.train.lengths is not None
    for x, y, n in zip(data.train.x, data.train.y, data.train.lengths, strict=True):
        assert torch.equal(x[1:n], y[: n - 1])  # the target is the next step
        assert float(x[n:].abs().sum() + y[n:].abs().sum()) == 0.0
        keys = x[:n].sum(1)
        assert float(keys.max()) <= 4 and float(keys.mean()) > 2.5  # four voices, some rests
    assert 1.0 < data.meta.baseline < 30.0


@needs_music21
def test_chorales_cache_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _chorales(tmp_path, monkeypatch, pieces=4)
    cached = list((tmp_path / "chorales").glob("*.npz"))
    assert len(cached) == 1

    def no_parsing(path: Path) -> np.ndarray:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(datasets, "piano_roll", no_parsing)
    again = _chorales(tmp_path, monkeypatch, pieces=4)
    assert torch.equal(first.train.x, again.train.x) and first.meta.baseline == again.meta.baseline
    with pytest.raises(AssertionError, match="cache was not used"):
        _chorales(tmp_path, monkeypatch, pieces=3)  # other pieces, other key


@needs_music21
def test_chorale_training_beats_the_frequency_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _chorales(tmp_path, monkeypatch, pieces=20)
    torch.manual_seed(0)
    model = SequenceModel("gru", 88, 32, output_size=88, head="per_step")
    result = train(model, data, TrainConfig(learning_rate=2e-2, batch_size=1, max_epochs=10))
    assert result.best_val_loss < data.meta.baseline
