"""Built-in tasks: pydantic specs and seeded, in-memory data generation.

Three synthetic tasks ship with cellsearch (see REFERENCES.md for their definitions):

- ``adding``: the adding problem, a regression on the sum of two marked values.
- ``copy``: the copy-memory problem of Arjovsky et al. (2016), per-step classification.
- ``digits``: scikit-learn's 8x8 digits read row by row or pixel by pixel.

Real data come from bundled data sets (``ucr``, ``forecast``, ``chorales``; see
:mod:`cellsearch.search.tasks.bundled`) and from user uploads (``dataset``; see
:mod:`cellsearch.search.tasks.file_formats`).

Every generator is vectorised and deterministic: the same spec and seed give identical
tensors, a different seed gives different data. Each split draws from its own random
stream, so the validation and test sets of a synthetic task do not change when only
``n_train`` changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cellsearch.search.tasks.bundled import (
    ChoralesTask,
    ForecastTask,
    UcrTask,
    prepare_chorales,
    prepare_forecast,
    prepare_ucr,
)
from cellsearch.search.tasks.file_formats import DatasetError, parse_upload
from cellsearch.search.tasks.sequences import Prepared, prepare_upload

if TYPE_CHECKING:
    from torch import Tensor

COPY_N_SYMBOLS = 10
"""Number of symbols to memorise in the copy task."""
COPY_N_CLASSES = 9
"""Target classes of the copy task: 0 is the blank, 1..8 the symbols."""
COPY_MARKER = 9
"""Input token that asks the model to start copying."""
DIGITS_N_IMAGES = 1797
"""Number of images in scikit-learn's digits data set."""

_SPLITS = ("train", "val", "test")


class AddingTask(BaseModel):
    """The adding problem: sum the two values marked in a sequence of uniform noise."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["adding"] = Field(description="Task identifier.")
    seq_len: int = Field(100, ge=2, description="Sequence length T (model input length).")
    n_train: int = Field(8000, ge=1, description="Number of training sequences.")
    n_val: int = Field(2000, ge=1, description="Number of validation sequences.")
    n_test: int = Field(2000, ge=1, description="Number of test sequences.")

    def sequence_length(self) -> int:
        """Return the length T of the model's input sequences."""
        return self.seq_len

    def dataset_size(self) -> int:
        """Return the total number of sequences over all splits."""
        return self.n_train + self.n_val + self.n_test


class CopyTask(BaseModel):
    """The copy-memory problem: recall 10 symbols after a delay of T blanks."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["copy"] = Field(description="Task identifier.")
    seq_len: int = Field(
        100,
        ge=1,
        description=(
            "Delay T of Arjovsky et al. (2016): 10 symbols, T-1 blanks, a marker, then 10 "
            "blanks; the model input length is T+20."
        ),
    )
    n_train: int = Field(8000, ge=1, description="Number of training sequences.")
    n_val: int = Field(2000, ge=1, description="Number of validation sequences.")
    n_test: int = Field(2000, ge=1, description="Number of test sequences.")

    def sequence_length(self) -> int:
        """Return the length T+20 of the model's input sequences."""
        return self.seq_len + 2 * COPY_N_SYMBOLS

    def dataset_size(self) -> int:
        """Return the total number of sequences over all splits."""
        return self.n_train + self.n_val + self.n_test


class _HeldOutSplits(BaseModel):
    """Validation and test shares carved from one pool by a seeded (stratified) split."""

    model_config = ConfigDict(extra="forbid")

    val_fraction: float = Field(
        0.15, ge=0.01, lt=1.0, description="Share held out for validation (seeded split)."
    )
    test_fraction: float = Field(
        0.15, ge=0.01, lt=1.0, description="Share held out for testing (seeded split)."
    )

    @model_validator(mode="after")
    def _fractions_leave_training_data(self) -> Self:
        if self.val_fraction + self.test_fraction > 0.9:
            raise ValueError("val_fraction + test_fraction must be at most 0.9")
        return self


class DigitsTask(_HeldOutSplits):
    """Sequential 8x8 digits (scikit-learn), classified from the last step."""

    kind: Literal["digits"] = Field(description="Task identifier.")
    mode: Literal["rows", "pixels"] = Field(
        "rows",
        description="'rows': T=8 steps of 8 pixels; 'pixels': T=64 steps of 1 pixel.",
    )

    def sequence_length(self) -> int:
        """Return the length T of the model's input sequences (8 or 64)."""
        return 8 if self.mode == "rows" else 64

    def dataset_size(self) -> int:
        """Return the total number of images over all splits."""
        return DIGITS_N_IMAGES


class DatasetTask(_HeldOutSplits):
    """A data set uploaded by the user (``POST /datasets``), referenced by its id."""

    kind: Literal["dataset"] = Field(description="Task identifier.")
    dataset_id: str = Field(min_length=1, max_length=64, description="Id of the uploaded data set.")
    task: Literal["classification", "regression", "per_step", "forecasting"] | None = Field(
        None, description="Task kind; None: inferred from the data where unambiguous."
    )
    window: int = Field(16, ge=1, le=4096, description="Forecasting: input steps per window.")
    horizon: int = Field(1, ge=1, le=512, description="Forecasting: future steps predicted.")

    def sequence_length(self) -> int:
        """Return 0: unknown until the data are read (limits are checked at upload)."""
        return 0

    def dataset_size(self) -> int:
        """Return 0: unknown until the data are read (limits are checked at upload)."""
        return 0


AnyTask = AddingTask | CopyTask | DigitsTask | UcrTask | ForecastTask | ChoralesTask | DatasetTask
"""Every task spec model."""

TaskSpec = Annotated[AnyTask, Field(discriminator="kind")]
"""The task part of a study spec, discriminated on ``kind``."""

DatasetResolver = Callable[[str], tuple[bytes, str]]
"""Maps an uploaded data set's id to its content and format (``npz`` or ``csv``)."""


@dataclass(frozen=True)
class TaskData:
    """Tensors of one task instance and what the trainer needs to know about them.

    Inputs are float32 ``(N, T, I)``. Targets are float32 ``(N, O)`` for regression,
    int64 ``(N,)`` for last-step classification, int64 ``(N, T)`` for per-step
    classification, float32 ``(N, T, O)`` for per-step regression (``mse``) and per-step
    binary targets (``bce``, e.g. piano rolls).

    Attributes:
        loss: ``mse`` (mean over target elements), ``cross_entropy`` (mean over targets)
            or ``bce`` (Bernoulli negative log-likelihood summed over the ``O`` outputs of a
            step, averaged over steps).
        baseline: Validation loss of the trivial predictor described by
            ``baseline_description``; a model that does not beat it learned nothing.
        chance_metric: Test metric of a guess, where meaningful (digits: 0.1 accuracy).
        lengths_train: Valid steps of each training sequence, int64 ``(N,)`` in
            ``[1, T]``, or None when every sequence has all ``T`` steps. Inputs and
            per-step targets are zero-padded past a sequence's length.
        lengths_val: As ``lengths_train``, for the validation split.
        lengths_test: As ``lengths_train``, for the test split.
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    input_size: int
    output_size: int
    head: Literal["last", "per_step"]
    loss: Literal["mse", "cross_entropy", "bce"]
    metric: str
    metric_direction: Literal["minimize", "maximize"]
    baseline: float
    baseline_description: str
    chance_metric: float | None
    lengths_train: Tensor | None = None
    lengths_val: Tensor | None = None
    lengths_test: Tensor | None = None


@dataclass(frozen=True)
class TaskInfo:
    """Human-readable description of a built-in task (served by ``GET /tasks``)."""

    kind: str
    title: str
    description: str
    baseline_description: str


TASKS: dict[str, TaskInfo] = {
    "adding": TaskInfo(
        kind="adding",
        title="Adding problem",
        description=(
            "Two input channels: values drawn from U(0, 1) and a marker equal to 1 at one "
            "position in each half of the sequence. The target is the sum of the two marked "
            "values (regression, MSE). Tests memory over T steps."
        ),
        baseline_description="predict the constant 1 (MSE 1/6)",
    ),
    "copy": TaskInfo(
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
    ),
    "digits": TaskInfo(
        kind="digits",
        title="Sequential digits",
        description=(
            "scikit-learn's 1797 8x8 handwritten digits scaled to [0, 1], read row by row "
            "(T=8, 8 features) or pixel by pixel (T=64, 1 feature); 10 classes, classified "
            "from the last step; stratified seeded train/validation/test split."
        ),
        baseline_description="uniform prediction over 10 classes (cross-entropy ln 10)",
    ),
    "ucr": TaskInfo(
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
            "uniform prediction over K classes (cross-entropy ln K); chance metric: test "
            "accuracy of the training majority class"
        ),
    ),
    "forecast": TaskInfo(
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
    ),
    "chorales": TaskInfo(
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
    ),
    "dataset": TaskInfo(
        kind="dataset",
        title="Uploaded data set",
        description=(
            "Sequences uploaded as NPZ or CSV (POST /datasets): classification from the "
            "last valid step, regression, per-step targets or forecasting windows. Seeded "
            "splits (stratified for classification); standardisation fitted on train."
        ),
        baseline_description=(
            "classification: uniform prediction (ln K); regression: the training mean; "
            "per-step: the training class frequencies; forecasting: persistence"
        ),
    ),
}


def build_task(
    spec: AnyTask, seed: int, *, resolve_dataset: DatasetResolver | None = None
) -> TaskData:
    """Generate or load the data of a task, deterministically from ``seed``.

    Args:
        spec: The validated task spec.
        seed: Seed of the data (independent of the training seed): synthetic draws and
            the seeded splits of real data (a chronological split ignores it).
        resolve_dataset: Reads an uploaded data set by id; needed for ``dataset`` tasks.

    Returns:
        The train, validation and test tensors with the task's metadata.

    Raises:
        DatasetError: A bundled data set's package is missing, or an upload is invalid.
    """
    if isinstance(spec, AddingTask):
        return _build_adding(spec, seed)
    if isinstance(spec, CopyTask):
        return _build_copy(spec, seed)
    if isinstance(spec, DigitsTask):
        return _build_digits(spec, seed)
    return _from_prepared(_prepare(spec, seed, resolve_dataset))


def _prepare(
    spec: UcrTask | ForecastTask | ChoralesTask | DatasetTask,
    seed: int,
    resolve_dataset: DatasetResolver | None,
) -> Prepared:
    if isinstance(spec, UcrTask):
        return prepare_ucr(spec, seed)
    if isinstance(spec, ForecastTask):
        return prepare_forecast(spec)
    if isinstance(spec, ChoralesTask):
        return prepare_chorales(spec, seed)
    if resolve_dataset is None:
        raise DatasetError(f"dataset {spec.dataset_id!r}: no dataset resolver was given")
    content, fmt = resolve_dataset(spec.dataset_id)
    if fmt not in ("npz", "csv"):
        raise DatasetError(f"dataset {spec.dataset_id!r} has unknown format {fmt!r}")
    dataset = parse_upload(content, fmt, kind=spec.task, max_bytes=max(len(content), 1))  # type: ignore[arg-type]
    return prepare_upload(
        dataset,
        val_fraction=spec.val_fraction,
        test_fraction=spec.test_fraction,
        window=spec.window,
        horizon=spec.horizon,
        seed=seed,
    )


_Arrays = tuple[np.ndarray, np.ndarray]


def _task_data(splits: dict[str, _Arrays], **meta: Any) -> TaskData:
    """Assemble a :class:`TaskData` from ``{split: (x, y)}`` arrays and the task's metadata.

    torch is imported here, not at module level, so that the service can read the specs
    and :data:`TASKS` without loading torch.
    """
    import torch

    x_train, y_train, x_val, y_val, x_test, y_test = (
        torch.from_numpy(np.ascontiguousarray(array))
        for split in _SPLITS
        for array in splits[split]
    )
    return TaskData(x_train, y_train, x_val, y_val, x_test, y_test, **meta)


def _from_prepared(prepared: Prepared) -> TaskData:
    """Turn prepared numpy splits into a :class:`TaskData` (torch imported here)."""
    import torch

    def tensor(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array))

    def lengths(split: str) -> Tensor | None:
        array = prepared.splits[split].lengths
        return None if array is None else tensor(array)

    train, val, test = (prepared.splits[s] for s in _SPLITS)
    return TaskData(
        x_train=tensor(train.x),
        y_train=tensor(train.y),
        x_val=tensor(val.x),
        y_val=tensor(val.y),
        x_test=tensor(test.x),
        y_test=tensor(test.y),
        input_size=prepared.input_size,
        output_size=prepared.output_size,
        head=prepared.head,
        loss=prepared.loss,
        metric=prepared.metric,
        metric_direction=prepared.metric_direction,
        baseline=prepared.baseline,
        baseline_description=prepared.baseline_description,
        chance_metric=prepared.chance_metric,
        lengths_train=lengths("train"),
        lengths_val=lengths("val"),
        lengths_test=lengths("test"),
    )


def _split_rng(kind: str, seed: int, split: str) -> np.random.Generator:
    """Return an independent random stream for one split of one task."""
    salt = [ord(c) for c in kind]
    return np.random.default_rng([seed, _SPLITS.index(split), *salt])


def _adding_split(n: int, seq_len: int, rng: np.random.Generator) -> _Arrays:
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
    return x, target[:, None].astype(np.float32)


def _build_adding(spec: AddingTask, seed: int) -> TaskData:
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    splits = {
        s: _adding_split(sizes[s], spec.seq_len, _split_rng("adding", seed, s)) for s in sizes
    }
    y_val = splits["val"][1]
    return _task_data(
        splits,
        input_size=2,
        output_size=1,
        head="last",
        loss="mse",
        metric="mse",
        metric_direction="minimize",
        baseline=float(np.mean((y_val - 1.0) ** 2)),
        baseline_description=TASKS["adding"].baseline_description
        + "; measured on this validation set",
        chance_metric=None,
    )


def _copy_split(n: int, delay: int, rng: np.random.Generator) -> _Arrays:
    """Generate ``n`` copy sequences: one-hot inputs (n, T+20, 10), targets (n, T+20)."""
    length = delay + 2 * COPY_N_SYMBOLS
    symbols = rng.integers(1, COPY_N_CLASSES, size=(n, COPY_N_SYMBOLS))  # (N, 10) in 1..8
    tokens = np.zeros((n, length), dtype=np.int64)
    tokens[:, :COPY_N_SYMBOLS] = symbols
    tokens[:, delay + COPY_N_SYMBOLS - 1] = COPY_MARKER
    target = np.zeros((n, length), dtype=np.int64)
    target[:, -COPY_N_SYMBOLS:] = symbols
    one_hot = np.eye(COPY_MARKER + 1, dtype=np.float32)
    return one_hot[tokens], target  # (N, T+20, 10), (N, T+20)


def copy_baseline(delay: int) -> float:
    """Cross-entropy of the memoryless copy predictor: ``10 ln 8 / (T + 20)``."""
    return COPY_N_SYMBOLS * math.log(COPY_N_CLASSES - 1) / (delay + 2 * COPY_N_SYMBOLS)


def _build_copy(spec: CopyTask, seed: int) -> TaskData:
    sizes = {"train": spec.n_train, "val": spec.n_val, "test": spec.n_test}
    splits = {s: _copy_split(sizes[s], spec.seq_len, _split_rng("copy", seed, s)) for s in sizes}
    return _task_data(
        splits,
        input_size=COPY_MARKER + 1,
        output_size=COPY_N_CLASSES,
        head="per_step",
        loss="cross_entropy",
        metric="cross_entropy",
        metric_direction="minimize",
        baseline=copy_baseline(spec.seq_len),
        baseline_description=TASKS["copy"].baseline_description,
        chance_metric=None,
    )


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


def _build_digits(spec: DigitsTask, seed: int) -> TaskData:
    pixels, labels = _digits_arrays()
    steps, features = (8, 8) if spec.mode == "rows" else (64, 1)
    splits = {
        name: (
            pixels[idx].reshape(len(idx), steps, features),  # (N, T, I)
            labels[idx],  # (N,)
        )
        for name, idx in digits_split_indices(spec, seed).items()
    }
    return _task_data(
        splits,
        input_size=features,
        output_size=10,
        head="last",
        loss="cross_entropy",
        metric="accuracy",
        metric_direction="maximize",
        baseline=math.log(10.0),
        baseline_description=TASKS["digits"].baseline_description,
        chance_metric=0.1,
    )
