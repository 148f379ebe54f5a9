"""The bundled real data sets as task kinds: UCR/UEA archives, forecasting, chorales.

- ``ucr``: UCR/UEA classification archives as shipped inside the ``aeon`` wheel, with the
  archive's own train/test split; validation is carved from train.
- ``forecast``: monthly airline passengers (``aeon``) and yearly sunspot numbers
  (``statsmodels``), split in time.
- ``chorales``: Bach chorales from ``music21``'s corpus as 88-key piano rolls at
  quarter-note steps.

The packages are an optional extra; their files are read by :mod:`.package_files`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.base import DatasetResolver, TaskKind, TaskSpecBase, no_closed_form
from cellsearch.search.tasks.data import Split, TaskData, TaskMeta
from cellsearch.search.tasks.file_formats import SequenceDataset
from cellsearch.search.tasks.package_files import (
    CHORALES_MAX_STEPS,
    CHORALES_N_PIECES,
    PIANO_KEYS,
    SERIES_LENGTHS,
    UCR_DATASETS,
    chorale_rolls,
    load_series,
    load_ucr,
)
from cellsearch.search.tasks.sequences import (
    forecast_windows,
    pad,
    prepare_sequences,
    require_nonempty,
    seeded_split,
)

UcrName = Literal["JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand", "ArrowHead"]
SeriesName = Literal["airline", "sunspots"]


class UcrTask(TaskSpecBase):
    """A UCR/UEA classification archive, classified from the last valid step."""

    kind: Literal["ucr"] = Field(description="Task identifier.")
    name: UcrName = Field(description="Archive name, as in the UCR/UEA repository.")
    val_fraction: float = Field(
        default=0.2,
        ge=0.05,
        le=0.5,
        description="Share of the archive's training set held out for validation.",
    )

    def sequence_length(self) -> int:
        """Return the longest sequence of the archive."""
        return UCR_DATASETS[self.name].max_length

    def dataset_size(self) -> int:
        """Return the archive's train plus test sequences."""
        info = UCR_DATASETS[self.name]
        return info.n_train + info.n_test


class ForecastTask(TaskSpecBase):
    """Forecast the next ``horizon`` values of a series from a window of ``window`` values."""

    kind: Literal["forecast"] = Field(description="Task identifier.")
    name: SeriesName = Field(
        description="'airline': monthly passengers 1949-1960 (aeon); 'sunspots': yearly "
        "sunspot numbers 1700-2008 (statsmodels)."
    )
    window: int = Field(
        default=12, ge=1, le=128, description="Input steps per window (model input length)."
    )
    horizon: int = Field(
        default=1, ge=1, le=24, description="Future steps predicted (1: next step)."
    )
    val_fraction: float = Field(
        default=0.15, ge=0.05, le=0.4, description="Share of the series (in time) for validation."
    )
    test_fraction: float = Field(
        default=0.15, ge=0.05, le=0.4, description="Last share of the series for testing."
    )

    @model_validator(mode="after")
    def _windows_fit(self) -> ForecastTask:
        n = SERIES_LENGTHS[self.name]
        train_end = round(n * (1 - self.val_fraction - self.test_fraction))
        val_end = round(n * (1 - self.test_fraction))
        short = min(val_end - train_end, n - val_end) < self.horizon
        if self.window + self.horizon > train_end or short:
            raise ValueError(
                f"window + horizon = {self.window + self.horizon} does not fit the {n} points "
                f"of {self.name} with these fractions"
            )
        return self

    def sequence_length(self) -> int:
        """Return the window length."""
        return self.window

    def dataset_size(self) -> int:
        """Return the number of windows in the series (all splits, before dropping)."""
        return SERIES_LENGTHS[self.name] - self.window - self.horizon + 1


class ChoralesTask(TaskSpecBase):
    """Bach chorales as 88-key piano rolls; predict the next step's keys."""

    kind: Literal["chorales"] = Field(description="Task identifier.")
    max_pieces: int | None = Field(
        default=None, ge=3, description="Use only the first N chorales (None: all of them)."
    )
    val_fraction: float = Field(
        default=0.2, ge=0.05, le=0.4, description="Share of the pieces for validation."
    )
    test_fraction: float = Field(
        default=0.2, ge=0.05, le=0.4, description="Share of the pieces for testing."
    )

    def sequence_length(self) -> int:
        """Return the longest input sequence (steps of the longest chorale minus one)."""
        return CHORALES_MAX_STEPS - 1

    def dataset_size(self) -> int:
        """Return the number of pieces used."""
        return min(self.max_pieces or CHORALES_N_PIECES, CHORALES_N_PIECES)


def prepare_ucr(
    spec: UcrTask, seed: int, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Archive train/test split, seeded stratified validation carved from train."""
    archive = load_ucr(spec.name)
    train_series, train_y = archive["train"]
    test_series, test_y = archive["test"]
    x, lengths = pad(train_series + test_series)
    y = np.concatenate([train_y, test_y])
    ds = SequenceDataset(x, lengths, y, "classification", UCR_DATASETS[spec.name].n_classes)
    carved = seeded_split(len(train_y), spec.val_fraction, 0.0, seed, train_y)
    parts = {
        "train": carved["train"],
        "val": carved["val"],
        "test": len(train_y) + np.arange(len(test_y)),
    }
    require_nonempty(parts, spec.name)
    return prepare_sequences(ds, parts)


def prepare_forecast(
    spec: ForecastTask, _seed: int = 0, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Chronological windows of one series (no seed: the split follows time)."""
    return forecast_windows(
        [load_series(spec.name)], spec.window, spec.horizon, spec.val_fraction, spec.test_fraction
    )


def prepare_chorales(
    spec: ChoralesTask, seed: int, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Next-step prediction on piano rolls, pieces split by ``seed``."""
    rolls = [r.astype(np.float32) for r in chorale_rolls(spec.max_pieces) if len(r) >= 2]
    x, lengths = pad([r[:-1] for r in rolls])  # (N, T, 88)
    y, _ = pad([r[1:] for r in rolls])
    parts = seeded_split(len(rolls), spec.val_fraction, spec.test_fraction, seed)
    require_nonempty(parts, f"{len(rolls)} chorales")
    splits = {name: Split(x[idx], y[idx], lengths[idx]) for name, idx in parts.items()}
    meta = TaskMeta(
        PIANO_KEYS, PIANO_KEYS, "per_step", "bce", "nll",
        baseline=_frequency_nll(splits["train"], splits["val"]),
        baseline_description="predict each key's training frequency at every step "
        "(Bernoulli NLL summed over 88 keys, per step, on the validation pieces)",
    )  # fmt: skip
    return TaskData.of(meta, splits)


def _frequency_nll(train: Split[np.ndarray], val: Split[np.ndarray]) -> float:
    assert train.lengths is not None and val.lengths is not None
    on = train.y[np.arange(train.y.shape[1]) < train.lengths[:, None]]  # (steps, 88)
    p = np.clip(on.mean(axis=0), 1e-6, 1 - 1e-6)
    steps = val.y[np.arange(val.y.shape[1]) < val.lengths[:, None]]
    nll = -(steps * np.log(p) + (1 - steps) * np.log1p(-p)).sum(axis=1)
    return float(nll.mean())


def _forecast_baseline(spec: ForecastTask) -> float | None:
    """Persistence on the validation windows (reads the small series file; numpy only)."""
    try:
        return prepare_forecast(spec).meta.baseline
    except DatasetError:  # the package that ships the series is not installed
        return None


UCR = TaskKind(
    kind="ucr",
    title="UCR/UEA classification",
    description=(
        "Time-series classification archives shipped inside the aeon wheel: "
        "JapaneseVowels (12 features, lengths 7-29, 9 classes, 270/370), BasicMotions "
        "(6 features, T=100, 4 classes, 40/40), GunPoint (T=150, 2 classes, 50/150), "
        "ItalyPowerDemand (T=24, 2 classes, 67/1029) and ArrowHead (T=251, 3 classes, "
        "36/175). The archive's train/test split; a seeded stratified validation set "
        "carved from train; features standardised with training statistics; "
        "classified from the last valid step. Needs the 'datasets' extra."
    ),
    baseline_description=(
        "predict the training class frequencies (cross-entropy; ln K when the K classes "
        "are equally frequent)"
    ),
    spec=UcrTask,
    prepare=prepare_ucr,
    baseline=no_closed_form,  # the carved training split's class frequencies
    metric_baseline=no_closed_form,
    metric_baseline_description="predict the training majority class (accuracy)",
)
FORECAST = TaskKind(
    kind="forecast",
    title="Series forecasting",
    description=(
        "Monthly airline passengers 1949-1960 (144 points, aeon) or yearly sunspot "
        "numbers 1700-2008 (309 points, statsmodels). A window of `window` values "
        "predicts the next `horizon` values (MSE on standardised values). "
        "Chronological split: train, then validation, then test; standardisation "
        "fitted on the training part. Needs the 'datasets' extra."
    ),
    baseline_description=(
        "the better of persistence (repeat the last observed value) and the training mean (MSE)"
    ),
    spec=ForecastTask,
    prepare=prepare_forecast,
    baseline=_forecast_baseline,
)
CHORALES = TaskKind(
    kind="chorales",
    title="Bach chorales (polyphonic music)",
    description=(
        "The Bach chorales of music21's corpus as 88-key piano rolls sampled at "
        "quarter notes, the source of the JSB Chorales benchmark (Chung et al. 2014). "
        "At every step the model predicts the keys of the next step; scored as the "
        "Bernoulli negative log-likelihood summed over keys, per step. Pieces are split "
        "by seed; processed rolls are cached on first use. Needs the 'datasets' extra."
    ),
    baseline_description=(
        "predict each key's training frequency at every step (per-step Bernoulli NLL)"
    ),
    spec=ChoralesTask,
    prepare=prepare_chorales,
    baseline=lambda spec: None,  # the key frequencies come from the pieces themselves
)
KINDS = (UCR, FORECAST, CHORALES)
"""The task kinds this module defines (collected by the registry)."""
