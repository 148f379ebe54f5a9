"""Padding, seeded splits, standardisation and forecasting windows (numpy only).

Everything here turns sequences into ``TaskData[np.ndarray]``: the three splits plus
what the trainer needs to know about them (the worker turns those into tensors).
Two rules hold throughout: splits are fixed by a seed (stratified by class for
classification), and standardisation statistics are fitted on the training split only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.data import SPLITS, Split, TaskData, TaskMeta
from cellsearch.search.tasks.file_formats import SequenceDataset

_MIN_SCALE = 1e-8


def pad(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``(L_i, F)`` sequences into zero-padded ``(N, T, F)`` and lengths ``(N,)``."""
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    out = np.zeros((len(sequences), int(lengths.max()), sequences[0].shape[1]), np.float32)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out, lengths


def valid_mask(lengths: np.ndarray, steps: int) -> np.ndarray:
    """``(N, T)`` boolean mask of the valid steps."""
    return np.arange(steps) < lengths[:, None]


def seeded_split(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Split ``range(n)`` into sorted train, val and test indices, stratified by ``labels``.

    Within each class (or the whole set) the members are shuffled by ``seed`` and placed
    at evenly spaced quantiles; those below ``test_fraction`` go to test, the next
    ``val_fraction`` to validation, the rest to training. Each split therefore holds
    about its fraction of every class, and the split depends only on the seed.
    """
    rng = np.random.default_rng(seed)
    groups = np.zeros(n, dtype=np.int64) if labels is None else np.asarray(labels)
    quantile = np.empty(n)
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        shuffled = members[rng.permutation(len(members))]
        quantile[shuffled] = (np.arange(len(members)) + 0.5) / len(members)
    test = quantile < test_fraction
    val = ~test & (quantile < test_fraction + val_fraction)
    return {
        "train": np.flatnonzero(~test & ~val),
        "val": np.flatnonzero(val),
        "test": np.flatnonzero(test),
    }


def require_nonempty(parts: dict[str, np.ndarray], what: str) -> None:
    """Raise a :class:`DatasetError` naming the first empty split."""
    for name in SPLITS:
        if len(parts[name]) == 0:
            raise DatasetError(
                f"{what}: the {name} split is empty; use more data or other fractions"
            )


@dataclass(frozen=True)
class Standardizer:
    """Per-feature ``(x - mean) / scale``, fitted on valid steps of the training split."""

    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)

    @classmethod
    def fit(cls, x: np.ndarray, lengths: np.ndarray | None = None) -> Standardizer:
        """Fit on ``x`` of shape ``(N, T, F)`` (or ``(N, F)``), valid steps only."""
        if lengths is None or x.ndim == 2:
            values = x.reshape(-1, x.shape[-1])
        else:
            values = x[valid_mask(lengths, x.shape[1])]
        values = values.astype(np.float64)
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > _MIN_SCALE, std, 1.0))

    def describe(self) -> dict[str, list[float]]:
        """The statistics, JSON-ready: ``{"mean": [...], "scale": [...]}`` per feature."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    def transform(self, x: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
        """Standardise ``x``, keeping the padding past each length at zero."""
        out = ((x - self.mean) / self.scale).astype(np.float32)
        if lengths is not None and x.ndim == 3:
            out[~valid_mask(lengths, x.shape[1])] = 0.0
        return out


def prepare_sequences(ds: SequenceDataset, parts: dict[str, np.ndarray]) -> TaskData[np.ndarray]:
    """Standardise and package a classification, regression or per-step data set.

    Args:
        ds: The sequences, with targets.
        parts: Indices of the train, val and test sequences in ``ds``.
    """
    assert ds.y is not None
    variable = bool((ds.lengths != ds.x.shape[1]).any())
    scaler = Standardizer.fit(ds.x[parts["train"]], ds.lengths[parts["train"]])
    x = scaler.transform(ds.x, ds.lengths)
    y = ds.y
    targets = None
    if ds.kind == "regression":
        y = y[:, None] if y.ndim == 1 else y
        targets = Standardizer.fit(y[parts["train"]])
        y = targets.transform(y)
    elif ds.kind == "per_step" and ds.n_classes is None:
        y = y[..., None]  # (N, T, 1)
        targets = Standardizer.fit(y[parts["train"]], ds.lengths[parts["train"]])
        y = targets.transform(y, ds.lengths)
    splits = {
        name: Split(x[idx], y[idx], ds.lengths[idx] if variable else None)
        for name, idx in parts.items()
    }
    return _package(ds, splits, x.shape[2], preprocessing(scaler, targets))


def preprocessing(inputs: Standardizer, targets: Standardizer | None) -> dict[str, Any]:
    """The :attr:`TaskMeta.preprocessing` of data standardised with these statistics."""
    return {"inputs": inputs.describe(), "targets": targets.describe() if targets else None}


def _package(
    ds: SequenceDataset,
    splits: dict[str, Split[np.ndarray]],
    features: int,
    prepared: dict[str, Any],
) -> TaskData[np.ndarray]:
    train, val = splits["train"], splits["val"]
    head: Literal["last", "per_step"] = "per_step" if ds.kind == "per_step" else "last"
    if ds.n_classes is None:  # regression, last step or per step, on standardised targets
        meta = TaskMeta(
            features, train.y.shape[-1], head, "mse", "mse",
            baseline=_masked_mean(val.y**2, val.lengths if head == "per_step" else None),
            baseline_description="predict the training mean (MSE on standardised targets)",
            preprocessing=prepared,
        )  # fmt: skip
        return TaskData.of(meta, splits)
    k = ds.n_classes
    if head == "last":
        meta = classification_meta(features, k, train.y, val.y, prepared)
        return TaskData.of(meta, splits)
    cross_entropy, accuracy, majority = class_prior_baseline(
        train.y[_mask_of(train)], val.y[_mask_of(val)], k
    )
    meta = TaskMeta(
        features, k, head, "cross_entropy", "accuracy",
        baseline=cross_entropy,
        baseline_description="predict the training class frequencies at every step (or "
        "equal ones where those score lower)",
        metric_baseline=accuracy,
        metric_baseline_description=f"predict the training majority class ({majority}) at "
        "every step",
        preprocessing=prepared,
    )  # fmt: skip
    return TaskData.of(meta, splits)


def class_prior_baseline(
    train_labels: np.ndarray, val_labels: np.ndarray, k: int
) -> tuple[float, float, int]:
    """The trivial classifiers of labels in ``0..k-1``: the cross-entropy on ``val_labels``
    of predicting the training class frequencies (or equal probabilities, ``ln k``, where
    that scores lower: a small validation split may hold the classes in other
    proportions), the accuracy of predicting the training majority class (the lowest
    label among ties), and that class."""
    counts = np.bincount(train_labels.ravel(), minlength=k)
    prior = np.maximum(counts / counts.sum(), 1e-12)
    majority = int(np.argmax(counts))
    cross_entropy = min(float(-np.log(prior[val_labels.ravel()]).mean()), math.log(k))
    return cross_entropy, float(np.mean(val_labels.ravel() == majority)), majority


def classification_meta(
    features: int,
    k: int,
    train_labels: np.ndarray,
    val_labels: np.ndarray,
    prepared: dict[str, Any] | None = None,
) -> TaskMeta:
    """The :class:`TaskMeta` of a classification from the last step over ``k`` classes,
    with the class prior's cross-entropy and the majority class's accuracy as baselines."""
    cross_entropy, accuracy, majority = class_prior_baseline(train_labels, val_labels, k)
    return TaskMeta(
        features, k, "last", "cross_entropy", "accuracy",
        baseline=cross_entropy,
        baseline_description=f"predict the training class frequencies over {k} classes, or "
        f"equal ones where those score lower (cross-entropy; ln {k} = {math.log(k):.4g})",
        metric_baseline=accuracy,
        metric_baseline_description=f"predict the training majority class ({majority})",
        preprocessing=prepared,
    )  # fmt: skip


def _mask_of(split: Split[np.ndarray]) -> np.ndarray:
    if split.lengths is None:
        return np.ones(split.y.shape[:2], dtype=bool)
    return valid_mask(split.lengths, split.y.shape[1])


def _masked_mean(values: np.ndarray, lengths: np.ndarray | None) -> float:
    if lengths is None:
        return float(values.mean())
    return float(values[valid_mask(lengths, values.shape[1])].mean())


def forecast_windows(
    series: list[np.ndarray],
    window: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
) -> TaskData[np.ndarray]:
    """Windows of ``window`` steps that predict the next ``horizon`` steps of every feature.

    Each series ``(L, F)`` is cut in time: its first ``1 - val - test`` share is training
    data, then validation, then test. A window belongs to the split that holds all its
    targets (inputs may reach back into earlier data, which is observed history); windows
    whose targets straddle a boundary are dropped. Standardisation is fitted on the
    training parts. Targets are flattened to ``(N, horizon * F)``.

    Raises:
        DatasetError: A split receives no window.
    """
    bounds = [_time_bounds(len(s), val_fraction, test_fraction) for s in series]
    scaler = Standardizer.fit(
        np.concatenate([s[: b[0]] for s, b in zip(series, bounds, strict=True)])
    )
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in SPLITS}
    for s, (train_end, val_end) in zip(series, bounds, strict=True):
        z = scaler.transform(s)
        if len(z) < window + horizon:
            continue
        views = np.lib.stride_tricks.sliding_window_view(z, window + horizon, axis=0)
        views = np.moveaxis(views, -1, 1)  # (M, window + horizon, F)
        first = np.arange(len(views)) + window  # index of the first target of each window
        last = first + horizon - 1
        chosen = {
            "train": last < train_end,
            "val": (first >= train_end) & (last < val_end),
            "test": first >= val_end,
        }
        for name, keep in chosen.items():
            pieces[name].append((views[keep, :window], views[keep, window:]))
    splits = {}
    for name in SPLITS:
        x = np.concatenate([p[0] for p in pieces[name]]) if pieces[name] else np.empty(0)
        if x.size == 0:
            raise DatasetError(
                f"window={window} and horizon={horizon} leave no {name} windows in series of "
                f"length {max(len(s) for s in series)}; use a shorter window or horizon"
            )
        y = np.concatenate([p[1] for p in pieces[name]])  # (N, horizon, F)
        splits[name] = Split(x.astype(np.float32), y.reshape(len(y), -1), None)
    features = series[0].shape[1]
    baseline, description = forecast_baseline(splits["val"], horizon)
    meta = TaskMeta(
        features, horizon * features, "last", "mse", "mse",
        baseline=baseline, baseline_description=description,
        preprocessing=preprocessing(scaler, scaler),  # the targets are future inputs
    )  # fmt: skip
    return TaskData.of(meta, splits)


def forecast_baseline(val: Split[np.ndarray], horizon: int) -> tuple[float, str]:
    """The stronger of the two trivial forecasts on the validation windows, in words.

    Persistence repeats each window's last value; the training mean is 0 on values
    standardised with the training part's statistics. Both are scored by their MSE on
    ``val`` (windows ``(N, window, F)``, targets ``(N, horizon * F)``).
    """
    persistence = np.repeat(val.x[:, -1:, :], horizon, axis=1).reshape(len(val.x), -1)
    last = float(np.mean((val.y - persistence) ** 2))
    mean = float(np.mean(val.y**2))
    where = "MSE on standardised values, measured on the validation windows"
    if last <= mean:
        return last, (
            f"persistence: repeat the last observed value ({where}; the training mean "
            f"scores {mean:.4g})"
        )
    return mean, f"predict the training mean ({where}; persistence scores {last:.4g})"


def _time_bounds(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """End of the training part and of the validation part of a series of length ``n``."""
    return round(n * (1 - val_fraction - test_fraction)), round(n * (1 - test_fraction))


def prepare_upload(
    ds: SequenceDataset,
    *,
    val_fraction: float,
    test_fraction: float,
    window: int,
    horizon: int,
    seed: int,
) -> TaskData[np.ndarray]:
    """Split and standardise an uploaded data set by its kind."""
    if ds.kind == "forecasting":
        series = [ds.x[i, :length] for i, length in enumerate(ds.lengths)]
        return forecast_windows(series, window, horizon, val_fraction, test_fraction)
    labels = ds.y if ds.kind == "classification" else None
    parts = seeded_split(len(ds.x), val_fraction, test_fraction, seed, labels)
    require_nonempty(parts, f"{len(ds.x)} sequences")
    return prepare_sequences(ds, parts)
