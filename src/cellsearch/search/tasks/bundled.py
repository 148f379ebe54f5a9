"""Bundled real data sets, read offline from the packages that ship them (numpy only).

- UCR/UEA classification archives as shipped inside the ``aeon`` wheel (``.ts`` files),
  with the archive's own train/test split; validation is carved from train.
- Forecasting series: monthly airline passengers (``aeon``) and yearly sunspot numbers
  (``statsmodels``).
- Bach chorales from ``music21``'s corpus as 88-key piano rolls at quarter-note steps,
  cached on first use (see :func:`cache_dir`).

The files are read directly from the installed packages (located without importing
them), so neither aeon's numba nor pandas is loaded. The packages are an optional extra;
a missing one raises :class:`~cellsearch.search.tasks.file_formats.DatasetError` naming the extra.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.base import DatasetResolver, TaskKind, TaskSpecBase
from cellsearch.search.tasks.data import Split, TaskData, TaskMeta
from cellsearch.search.tasks.file_formats import SequenceDataset
from cellsearch.search.tasks.sequences import (
    forecast_windows,
    pad,
    prepare_sequences,
    require_nonempty,
    seeded_split,
)

EXTRA_HINT = "pip install 'cellsearch[datasets]'"


@dataclass(frozen=True)
class UcrInfo:
    """Known facts of a UCR/UEA archive (no data loaded)."""

    n_train: int
    n_test: int
    n_classes: int
    n_features: int
    max_length: int
    variable_length: bool


UCR_DATASETS: dict[str, UcrInfo] = {
    "JapaneseVowels": UcrInfo(270, 370, 9, 12, 29, True),
    "BasicMotions": UcrInfo(40, 40, 4, 6, 100, False),
    "GunPoint": UcrInfo(50, 150, 2, 1, 150, False),
    "ItalyPowerDemand": UcrInfo(67, 1029, 2, 1, 24, False),
    "ArrowHead": UcrInfo(36, 175, 3, 1, 251, False),
}
SERIES_LENGTHS = {"airline": 144, "sunspots": 309}
"""Points in each forecasting series (monthly 1949-1960; yearly 1700-2008)."""
CHORALES_N_PIECES = 350
"""Distinct chorales of music21's Riemenschneider list in its corpus (music21 10.5)."""
CHORALES_MAX_STEPS = 193
"""Quarter-note steps of the longest chorale (inputs are one step shorter)."""
PIANO_KEYS = 88
LOWEST_KEY = 21  # MIDI number of A0


class UcrTask(TaskSpecBase):
    """A UCR/UEA classification archive, classified from the last valid step."""

    kind: Literal["ucr"] = Field(description="Task identifier.")
    name: Literal["JapaneseVowels", "BasicMotions", "GunPoint", "ItalyPowerDemand", "ArrowHead"] = (
        Field(description="Archive name, as in the UCR/UEA repository.")
    )
    val_fraction: float = Field(
        0.2,
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
    name: Literal["airline", "sunspots"] = Field(
        description="'airline': monthly passengers 1949-1960 (aeon); 'sunspots': yearly "
        "sunspot numbers 1700-2008 (statsmodels)."
    )
    window: int = Field(
        12, ge=1, le=128, description="Input steps per window (model input length)."
    )
    horizon: int = Field(1, ge=1, le=24, description="Future steps predicted (1: next step).")
    val_fraction: float = Field(
        0.15, ge=0.05, le=0.4, description="Share of the series (in time) for validation."
    )
    test_fraction: float = Field(
        0.15, ge=0.05, le=0.4, description="Last share of the series for testing."
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
        None, ge=3, description="Use only the first N chorales (None: all of them)."
    )
    val_fraction: float = Field(
        0.2, ge=0.05, le=0.4, description="Share of the pieces for validation."
    )
    test_fraction: float = Field(
        0.2, ge=0.05, le=0.4, description="Share of the pieces for testing."
    )

    def sequence_length(self) -> int:
        """Return the longest input sequence (steps of the longest chorale minus one)."""
        return CHORALES_MAX_STEPS - 1

    def dataset_size(self) -> int:
        """Return the number of pieces used."""
        return min(self.max_pieces or CHORALES_N_PIECES, CHORALES_N_PIECES)


# --- locating the packages' files ----------------------------------------------------------


def _package_dir(package: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"this data set needs the package {package!r}: {EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package: str, *parts: str) -> Path:
    path = _package_dir(package).joinpath(*parts)
    if not path.is_file():
        raise DatasetError(f"{'/'.join(parts)} is missing from the installed {package!r} package")
    return path


# --- UCR/UEA ------------------------------------------------------------------------------


def read_ts(path: Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Read a ``.ts`` file: series ``(L, F)``, their labels, and the declared class labels."""
    series, labels, classes = [], [], []
    in_data = False
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            words = line.split()
            if words[0].lower() == "@classlabel" and len(words) > 2:
                classes = words[2:]
            in_data = words[0].lower() == "@data"
            continue
        *dims, label = line.split(":")
        columns = [np.array(d.split(","), dtype=np.float64) for d in dims]
        series.append(np.stack(columns, axis=1))  # (L, F)
        labels.append(label.strip())
    return series, labels, classes


def load_ucr(name: str) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """The archive's train and test series with integer labels (the header's class order)."""
    if name not in UCR_DATASETS:
        raise DatasetError(f"unknown UCR data set {name!r}; bundled: {', '.join(UCR_DATASETS)}")
    out = {}
    for split in ("train", "test"):
        path = _data_file("aeon", "datasets", "data", name, f"{name}_{split.upper()}.ts")
        series, labels, classes = read_ts(path)
        index = {c: i for i, c in enumerate(classes or sorted(set(labels)))}
        out[split] = (series, np.array([index[c] for c in labels], dtype=np.int64))
    return out


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


# --- forecasting --------------------------------------------------------------------------


def load_series(name: str) -> np.ndarray:
    """A forecasting series as float64 ``(L, 1)``."""
    if name == "airline":
        path = _data_file("aeon", "datasets", "data", "Airline", "Airline.csv")
    elif name == "sunspots":
        path = _data_file("statsmodels", "datasets", "sunspots", "sunspots.csv")
    else:
        raise DatasetError(f"unknown series {name!r}; bundled: {', '.join(SERIES_LENGTHS)}")
    values = np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.float64)
    return values[:, None]


def prepare_forecast(
    spec: ForecastTask, _seed: int = 0, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Chronological windows of one series (no seed: the split follows time)."""
    return forecast_windows(
        [load_series(spec.name)], spec.window, spec.horizon, spec.val_fraction, spec.test_fraction
    )


# --- chorales -----------------------------------------------------------------------------

_SUFFIX_PREFERENCE = {".mxl": 0, ".xml": 1, ".musicxml": 2, ".krn": 3}
_ROLL_VERSION = "quarter-steps-v1"
"""Changes whenever the piano-roll processing changes, so that old caches are not read."""


def cache_dir() -> Path:
    """Where processed data sets are cached: ``CELLSEARCH_CACHE_DIR`` or the user cache."""
    configured = os.environ.get("CELLSEARCH_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cellsearch"


def chorale_paths(max_pieces: int | None = None) -> list[Path]:
    """Corpus files of the chorales in Riemenschneider order, each once."""
    if importlib.util.find_spec("music21") is None:
        raise DatasetError(f"the chorales need the package 'music21': {EXTRA_HINT}")
    from music21 import corpus
    from music21.corpus import chorales

    paths: list[Path] = []
    for name in dict.fromkeys(chorales.Iterator(returnType="filename")):
        found = corpus.getWork(name)
        candidates = found if isinstance(found, list) else [found]
        stem = name.split("/")[-1]
        exact = sorted(
            (Path(p) for p in candidates if Path(p).stem == stem or len(candidates) == 1),
            key=lambda p: _SUFFIX_PREFERENCE.get(p.suffix, len(_SUFFIX_PREFERENCE)),
        )
        if exact and exact[0] not in paths:
            paths.append(exact[0])
        if max_pieces is not None and len(paths) == max_pieces:
            break
    return paths


def piano_roll(path: Path) -> np.ndarray:
    """The keys sounding at each quarter-note beat, uint8 ``(steps, 88)``."""
    from music21 import converter

    score = converter.parse(str(path))
    roll = np.zeros((math.ceil(float(score.highestTime)), PIANO_KEYS), dtype=np.uint8)
    for note in score.flatten().notes:  # notes and chords, absolute offsets
        start = float(note.offset)
        first, stop = math.ceil(start), math.ceil(start + float(note.quarterLength))
        for pitch in note.pitches:
            key = pitch.midi - LOWEST_KEY
            if 0 <= key < PIANO_KEYS:
                roll[first:stop, key] = 1
    return roll


def _cache_key(paths: list[Path]) -> str:
    digest = hashlib.sha256(f"{_ROLL_VERSION}:{PIANO_KEYS}:{LOWEST_KEY}".encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def chorale_rolls(max_pieces: int | None = None) -> list[np.ndarray]:
    """Piano rolls of the chorales, parsed once and cached by a hash of the corpus files."""
    paths = chorale_paths(max_pieces)
    target = cache_dir() / "chorales" / f"{_cache_key(paths)}.npz"
    if target.is_file():
        with np.load(target) as cached:
            return np.split(cached["rolls"], np.cumsum(cached["lengths"])[:-1])
    rolls = [piano_roll(p) for p in paths]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        np.savez_compressed(
            handle, rolls=np.concatenate(rolls), lengths=np.array([len(r) for r in rolls])
        )
    os.replace(partial, target)  # atomic: concurrent workers never read a partial file
    return rolls


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
    baseline_description="uniform prediction over the K classes (cross-entropy ln K)",
    spec=UcrTask,
    prepare=prepare_ucr,
    baseline=lambda spec: math.log(UCR_DATASETS[spec.name].n_classes),
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
    baseline_description="persistence: repeat the last observed value (MSE)",
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
