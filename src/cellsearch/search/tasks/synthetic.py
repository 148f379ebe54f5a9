"""The synthetic tasks: pydantic specs and seeded, in-memory data generation.

See REFERENCES.md for their definitions:

- ``adding``: the adding problem, a regression on the sum of two marked values.
- ``copy``: the copy-memory problem of Arjovsky et al. (2016), per-step classification.
- ``digits``: scikit-learn's 8x8 digits read row by row or pixel by pixel.

Every generator is vectorised and deterministic: the same spec and seed give identical
arrays, a different seed gives different data. Each split draws from its own random
stream, so the validation and test sets of a synthetic task do not change when only
``n_train`` changes.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
from pydantic import Field

from cellsearch.search.tasks.base import (
    DatasetResolver,
    HeldOutSplits,
    TaskKind,
    TaskSpecBase,
    no_closed_form,
)
from cellsearch.search.tasks.data import SPLITS, Split, TaskData, TaskMeta
from cellsearch.search.tasks.sequences import classification_meta

COPY_N_SYMBOLS = 10
"""Number of symbols to memorise in the copy task."""
COPY_N_CLASSES = 9
"""Target classes of the copy task: 0 is the blank, 1..8 the symbols."""
COPY_MARKER = 9
"""Input token that asks the model to start copying."""
DIGITS_N_IMAGES = 1797
"""Number of images in scikit-learn's digits data set."""


class AddingTask(TaskSpecBase):
    """The adding problem: sum the two values marked in a sequence of uniform noise."""

    kind: Literal["adding"] = Field(description="Task identifier.")
    seq_len: int = Field(default=100, ge=2, description="Sequence length T (model input length).")
    n_train: int = Field(default=8000, ge=1, description="Number of training sequences.")
    n_val: int = Field(default=2000, ge=1, description="Number of validation sequences.")
    n_test: int = Field(default=2000, ge=1, description="Number of test sequences.")

    def sequence_length(self) -> int:
        """Return the length T of the model's input sequences."""
        return self.seq_len

    def dataset_size(self) -> int:
        """Return the total number of sequences over all splits."""
        return self.n_train + self.n_val + self.n_test


class CopyTask(TaskSpecBase):
    """The copy-memory problem: recall 10 symbols after a delay of T blanks."""

    kind: Literal["copy"] = Field(description="Task identifier.")
    seq_len: int = Field(
        default=100,
        ge=1,
        description=(
            "Delay T of Arjovsky et al. (2016): 10 symbols, T-1 blanks, a marker, then 10 "
            "blanks; the model input length is T+20."
        ),
    )
    n_train: int = Field(default=8000, ge=1, description="Number of training sequences.")
    n_val: int = Field(default=2000, ge=1, description="Number of validation sequences.")
    n_test: int = Field(default=2000, ge=1, description="Number of test sequences.")

    def sequence_length(self) -> int:
        """Return the length T+20 of the model's input sequences."""
        return self.seq_len + 2 * COPY_N_SYMBOLS

    def dataset_size(self) -> int:
        """Return the total number of sequences over all splits."""
        return self.n_train + self.n_val + self.n_test


class DigitsTask(HeldOutSplits):
    """Sequential 8x8 digits (scikit-learn), classified from the last step."""

    kind: Literal["digits"] = Field(description="Task identifier.")
    mode: Literal["rows", "pixels"] = Field(
        default="rows",
        description="'rows': T=8 steps of 8 pixels; 'pixels': T=64 steps of 1 pixel.",
    )

    def sequence_length(self) -> int:
        """Return the length T of the model's input sequences (8 or 64)."""
        return 8 if self.mode == "rows" else 64

    def dataset_size(self) -> int:
        """Return the total number of images over all splits."""
        return DIGITS_N_IMAGES


def _split_rng(kind: str, seed: int, split: str) -> np.random.Generator:
    """Return an independent random stream for one split of one task."""
    salt = [ord(c) for c in kind]
    return np.random.default_rng([seed, SPLITS.index(split), *salt])


def _adding_split(n: int, seq_len: int, rng: np.random.Generator) -> Split[np.ndarray]:
    """Generate ``n`` adding-problem sequences: inputs (n, T, 2), targets (n, 1)."""
    values = rng.random((n, seq_len), dtype=np.float32)  # (N, T)
    half = seq_len // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, seq_len, size=n)
    rows = np.arange(n)
    markers = np.zeros((n, seq_len), dtype=np.float32)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]  # (N,)
    x = np.stack([values, markers], axis=-1)  # (N, T, 2)
    return Split(x, target[:, None].astype(np.float32))


def prepare_adding(
    spec: AddingTask, seed: int, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """The adding problem's splits; the baseline is measured on the validation set."""
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    splits = {
        s: _adding_split(sizes[s], spec.seq_len, _split_rng("adding", seed, s)) for s in sizes
    }
    meta = TaskMeta(
        input_size=2,
        output_size=1,
        head="last",
        loss="mse",
        metric="mse",
        baseline=float(np.mean((splits["val"].y - 1.0) ** 2)),
        baseline_description=ADDING.baseline_description + "; measured on this validation set",
    )
    return TaskData.of(meta, splits)


def _copy_split(n: int, delay: int, rng: np.random.Generator) -> Split[np.ndarray]:
    """Generate ``n`` copy sequences: one-hot inputs (n, T+20, 10), targets (n, T+20)."""
    length = delay + 2 * COPY_N_SYMBOLS
    symbols = rng.integers(1, COPY_N_CLASSES, size=(n, COPY_N_SYMBOLS))  # (N, 10) in 1..8
    tokens = np.zeros((n, length), dtype=np.int64)
    tokens[:, :COPY_N_SYMBOLS] = symbols
    tokens[:, delay + COPY_N_SYMBOLS - 1] = COPY_MARKER
    target = np.zeros((n, length), dtype=np.int64)
    target[:, -COPY_N_SYMBOLS:] = symbols
    one_hot = np.eye(COPY_MARKER + 1, dtype=np.float32)
    return Split(one_hot[tokens], target)  # (N, T+20, 10), (N, T+20)


def copy_baseline(delay: int) -> float:
    """Cross-entropy of the memoryless copy predictor: ``10 ln 8 / (T + 20)``."""
    return COPY_N_SYMBOLS * math.log(COPY_N_CLASSES - 1) / (delay + 2 * COPY_N_SYMBOLS)


def prepare_copy(
    spec: CopyTask, seed: int, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """The copy-memory problem's splits."""
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    splits = {s: _copy_split(sizes[s], spec.seq_len, _split_rng("copy", seed, s)) for s in sizes}
    meta = TaskMeta(
        input_size=COPY_MARKER + 1,
        output_size=COPY_N_CLASSES,
        head="per_step",
        loss="cross_entropy",
        metric="cross_entropy",
        baseline=copy_baseline(spec.seq_len),
        baseline_description=COPY.baseline_description,
    )
    return TaskData.of(meta, splits)


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Load scikit-learn's digits once: pixels in [0, 1] (1797, 64) and labels (1797,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def digits_split_indices(spec: DigitsTask, seed: int) -> dict[str, np.ndarray]:
    """Return the stratified, seeded image indices of the train, val and test splits."""
    from sklearn.model_selection import train_test_split

    _, labels = _digits_arrays()
    index = np.arange(len(labels))
    rest, test = train_test_split(
        index, test_size=spec.test_fraction, stratify=labels, random_state=seed
    )
    val_share = spec.val_fraction / (1.0 - spec.test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=labels[rest], random_state=seed
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def prepare_digits(
    spec: DigitsTask, seed: int, _resolve: DatasetResolver | None = None
) -> TaskData[np.ndarray]:
    """Sequential digits, split by ``seed`` (stratified)."""
    pixels, labels = _digits_arrays()
    steps, features = (8, 8) if spec.mode == "rows" else (64, 1)
    splits = {
        name: Split(
            pixels[idx].reshape(len(idx), steps, features),  # (N, T, I)
            labels[idx],  # (N,)
        )
        for name, idx in digits_split_indices(spec, seed).items()
    }
    scaled = {"mean": [0.0] * features, "scale": [16.0] * features}  # pixels 0..16 to [0, 1]
    prepared = {"inputs": scaled, "targets": None}
    meta = classification_meta(features, 10, splits["train"].y, splits["val"].y, prepared)
    return TaskData.of(meta, splits)


ADDING = TaskKind(
    kind="adding",
    title="Adding problem",
    description=(
        "Two input channels: values drawn from U(0, 1) and a marker equal to 1 at one "
        "position in each half of the sequence. The target is the sum of the two marked "
        "values (regression, MSE). Tests memory over T steps."
    ),
    baseline_description="predict the constant 1 (MSE 1/6)",
    spec=AddingTask,
    prepare=prepare_adding,
    baseline=lambda spec: 1 / 6,
)
COPY = TaskKind(
    kind="copy",
    title="Copy memory",
    description=(
        "One-hot tokens: 10 symbols from 1..8, T-1 blanks, a marker (9), then 10 blanks. "
        "At every step the model predicts blank (0) until the marker has passed, then the "
        "10 symbols in order (per-step cross-entropy over 9 classes). Sequence length T+20."
    ),
    baseline_description=(
        "memoryless: blanks, then a uniform guess over the 8 symbols (10 ln 8 / (T+20))"
    ),
    spec=CopyTask,
    prepare=prepare_copy,
    baseline=lambda spec: copy_baseline(spec.seq_len),
)
DIGITS = TaskKind(
    kind="digits",
    title="Sequential digits",
    description=(
        "scikit-learn's 1797 8x8 handwritten digits scaled to [0, 1], read row by row "
        "(T=8, 8 features) or pixel by pixel (T=64, 1 feature); 10 classes, classified "
        "from the last step; stratified seeded train/validation/test split."
    ),
    baseline_description=(
        "predict the training class frequencies (cross-entropy, about ln 10: the classes "
        "are nearly balanced)"
    ),
    spec=DigitsTask,
    prepare=prepare_digits,
    baseline=no_closed_form,  # the split's class frequencies
    metric_baseline=no_closed_form,
    metric_baseline_description="predict the training majority class (accuracy about 0.1)",
)
KINDS = (ADDING, COPY, DIGITS)
"""The task kinds this module defines (collected by the registry)."""
