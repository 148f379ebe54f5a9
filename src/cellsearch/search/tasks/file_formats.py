"""Parse and validate uploaded sequence data sets (numpy only: no torch here).

Two formats are accepted.

**NPZ** (``numpy.savez`` or ``numpy.savez_compressed``), with the arrays

- ``x``: the inputs, ``(N, T, F)`` or ``(N, T)`` (one feature), any real dtype;
- ``lengths`` (optional): valid steps of each sequence, ``(N,)`` integers in ``1..T``;
  steps past a length are padding and are ignored (they may hold anything, even NaN);
- ``y`` (optional): ``(N,)`` labels or values, ``(N, K)`` values, or ``(N, T)`` per-step
  labels or values.

**CSV** in long format, one row per time step, with a header::

    sequence_id,step,f1,f2,label
    a,0,0.5,1.2,1
    a,1,0.7,1.1,1
    b,0,0.1,0.9,0
    b,1,0.2,0.8,0
    b,2,0.4,0.3,0

``sequence_id`` (any text) and ``step`` (integer) are required; the steps of a sequence
are sorted, and each (sequence_id, step) pair appears once. Every other column except
``label`` is a numeric feature. ``label`` (optional) belongs to the sequence and must be
the same on all its rows. Sequences keep the order of their first row.

The task kind is inferred where unambiguous (no ``y``: forecasting; ``y`` with a T axis:
per_step; integer ``y`` with few distinct values: classification; float ``y``:
regression); otherwise :class:`DatasetError` asks for it.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.csv_upload import read_csv
from cellsearch.search.tasks.upload_limits import UploadLimits, check_npz_headers

__all__ = [
    "KINDS",
    "SequenceDataset",
    "parse_upload",
    "summarize",
    "validate_arrays",
]

TaskKind = Literal["classification", "regression", "per_step", "forecasting"]
KINDS: tuple[TaskKind, ...] = ("classification", "regression", "per_step", "forecasting")
MAX_INFERRED_CLASSES = 100
"""Integer targets with more distinct values than this are not taken for class labels."""
MAX_CLASSES = 10_000
"""Largest number of classes (labels 0..K-1) of a classification data set."""
_NPZ_KEYS = ("x", "lengths", "y")
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True)
class SequenceDataset:
    """A validated data set of zero-padded sequences.

    Attributes:
        x: float32 ``(N, T, F)``, zero past each sequence's length.
        lengths: int64 ``(N,)`` in ``1..T``; ``T`` is the longest length.
        y: classification: int64 ``(N,)``; regression: float32 ``(N,)`` or ``(N, K)``;
            per_step: int64 or float32 ``(N, T)``, zero past each length; forecasting: None.
        kind: The task kind.
        n_classes: Number of classes (``max label + 1``) for integer targets, else None.
    """

    x: np.ndarray
    lengths: np.ndarray
    y: np.ndarray | None
    kind: TaskKind
    n_classes: int | None


def parse_upload(
    content: bytes,
    fmt: Literal["npz", "csv"],
    *,
    kind: str | None = None,
    max_bytes: int = 100_000_000,
    limits: UploadLimits | None = None,
) -> SequenceDataset:
    """Parse and validate an uploaded file.

    Args:
        content: The file's bytes.
        fmt: ``npz`` or ``csv`` (see the module docstring).
        kind: The task kind, or None to infer it.
        max_bytes: Largest accepted file, and largest decompressed NPZ content.
        limits: Bounds on sequences, steps and features, checked before the arrays are
            allocated (:mod:`.upload_limits`); None: only ``max_bytes`` (a stored data set
            that was checked when it was uploaded).

    Returns:
        The validated data set.

    Raises:
        DatasetError: The file is not valid; the message says why.
    """
    if kind is not None and kind not in KINDS:
        raise DatasetError(f"unknown task kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if len(content) > max_bytes:
        raise DatasetError(f"file of {len(content)} bytes exceeds the limit of {max_bytes} bytes")
    if not content:
        raise DatasetError("empty data: the file has no content")
    if fmt == "npz":
        x, lengths, y = _read_npz(content, max_bytes, limits)
    elif fmt == "csv":
        x, lengths, y = read_csv(content, limits)
    else:
        raise DatasetError(f"unknown format {fmt!r}; expected 'npz' or 'csv'")
    return validate_arrays(x, lengths, y, kind=kind)


def summarize(ds: SequenceDataset) -> dict[str, object]:
    """What the service stores and shows about a data set."""
    return {
        "n_sequences": int(ds.x.shape[0]),
        "max_length": int(ds.lengths.max()),
        "n_features": int(ds.x.shape[2]),
        "kind": ds.kind,
        "n_classes": ds.n_classes,
    }


# --- NPZ ---------------------------------------------------------------------------------


def _read_npz(
    content: bytes, max_bytes: int, limits: UploadLimits | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    if not content.startswith(_ZIP_MAGIC):
        raise DatasetError("not a valid NPZ file: expected a zip archive written by numpy.savez")
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
            names = [n.removesuffix(".npy") for n in archive.namelist()]
        if unpacked > max_bytes:
            raise DatasetError(
                f"NPZ content of {unpacked} bytes (decompressed) exceeds the limit of "
                f"{max_bytes} bytes"
            )
        unknown = sorted(set(names) - set(_NPZ_KEYS))
        if unknown:
            raise DatasetError(
                f"unexpected arrays in the NPZ file: {', '.join(unknown)}; "
                "expected x and optionally lengths, y"
            )
        if "x" not in names:
            raise DatasetError("the NPZ file has no array named 'x'")
        if limits is not None:
            with zipfile.ZipFile(io.BytesIO(content)) as archive:
                check_npz_headers(archive, limits)
        with np.load(io.BytesIO(content), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in names}
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray):  # numpy hands back non-.npy members as bytes
                raise DatasetError(f"not a valid NPZ file: member {name!r} is not a .npy array")
    except DatasetError:
        raise
    except MemoryError:
        raise DatasetError("the NPZ arrays do not fit in this server's memory") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise DatasetError(f"not a valid NPZ file: {_first_line(exc)}") from None
    return arrays["x"], arrays.get("lengths"), arrays.get("y")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- validation --------------------------------------------------------------------------


def validate_arrays(
    x: np.ndarray, lengths: np.ndarray | None, y: np.ndarray | None, *, kind: str | None = None
) -> SequenceDataset:
    """Check raw arrays and return them as a :class:`SequenceDataset`.

    Raises:
        DatasetError: A problem with shapes, dtypes, values or the task kind.
    """
    x = _check_x(x)
    lengths = _check_lengths(lengths, x.shape[0], x.shape[1])
    valid = np.arange(x.shape[1]) < lengths[:, None]  # (N, T)
    x = np.where(valid[..., None], x, np.float32(0.0))
    _check_finite("x", x)
    task = _infer_kind(y, x.shape[1], kind)
    x = np.ascontiguousarray(x[:, : int(lengths.max())])
    if task == "forecasting":
        if y is not None:
            raise DatasetError("a forecasting data set takes no y: targets are the series itself")
        return SequenceDataset(x, lengths, None, task, None)
    if y is None:
        raise DatasetError(f"a {task} data set needs targets: add y (NPZ) or label (CSV)")
    y_checked, n_classes = _check_y(y, task, valid)
    if task == "per_step":
        y_checked = y_checked[:, : x.shape[1]]
    return SequenceDataset(x, lengths, y_checked, task, n_classes)


def _check_x(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "biuf":
        raise DatasetError(f"x must be a real numeric array; got dtype {x.dtype}")
    if x.ndim == 2:
        x = x[:, :, None]
    if x.ndim != 3:
        raise DatasetError(f"x must have shape (N, T, F) or (N, T); got shape {x.shape}")
    if 0 in x.shape:
        raise DatasetError(f"empty data: x has shape {x.shape}")
    return x.astype(np.float32, copy=False)  # what the model reads; beyond float32 is inf


def _check_lengths(lengths: np.ndarray | None, n: int, steps: int) -> np.ndarray:
    if lengths is None:
        return np.full(n, steps, dtype=np.int64)
    if lengths.dtype.kind not in "iuf" or lengths.ndim != 1:
        raise DatasetError(
            f"lengths must be a 1-d integer array; got {lengths.dtype} {lengths.shape}"
        )
    if len(lengths) != n:
        raise DatasetError(f"lengths has {len(lengths)} entries but x has {n} sequences")
    if lengths.dtype.kind == "f" and not np.all(np.isfinite(lengths) & (lengths % 1 == 0)):
        raise DatasetError("lengths must be integers")
    out = lengths.astype(np.int64)
    bad = np.flatnonzero((out < 1) | (out > steps))
    if bad.size:
        i = int(bad[0])
        raise DatasetError(
            f"lengths must be in 1..T={steps}; sequence {i} has length {int(out[i])}"
        )
    return out


def _check_finite(name: str, values: np.ndarray) -> None:
    nans = int(np.isnan(values).sum())
    if nans:
        raise DatasetError(f"{name} has {nans} NaN value{'s' * (nans > 1)}")
    infs = int(np.isinf(values).sum())
    if infs:
        raise DatasetError(f"{name} has {infs} infinite value{'s' * (infs > 1)}")


def _infer_kind(y: np.ndarray | None, steps: int, kind: str | None) -> TaskKind:
    if kind is not None:
        return kind  # type: ignore[return-value]  # checked against KINDS by the caller
    if y is None:
        return "forecasting"
    if y.ndim == 2 and y.shape[1] == steps and steps > 1:
        return "per_step"
    if y.dtype.kind in "biu" and y.ndim == 1:
        distinct = len(np.unique(y))
        if distinct <= min(MAX_INFERRED_CLASSES, max(2, len(y) // 2)):
            return "classification"
        raise DatasetError(
            f"cannot infer the task kind: y holds integers with {distinct} distinct values "
            "for as many sequences; set kind to 'classification' or 'regression'"
        )
    if y.dtype.kind == "f" and y.ndim in (1, 2):
        return "regression"
    raise DatasetError(
        f"cannot infer the task kind from y of dtype {y.dtype} and shape {y.shape}; "
        f"set kind to one of {', '.join(KINDS)}"
    )


def _check_y(y: np.ndarray, kind: TaskKind, valid: np.ndarray) -> tuple[np.ndarray, int | None]:
    n, steps = valid.shape
    if y.dtype.kind not in "biuf":
        raise DatasetError(f"y must be a real numeric array; got dtype {y.dtype}")
    if y.shape[0] != n:
        raise DatasetError(f"y has {y.shape[0]} entries but x has {n} sequences")
    if kind == "per_step":
        if y.shape != (n, steps):
            raise DatasetError(f"per_step y must have shape (N, T)=({n}, {steps}); got {y.shape}")
        y = np.where(valid, y, 0)
    elif kind == "classification" and y.ndim != 1:
        raise DatasetError(f"classification y must have shape (N,)=({n},); got {y.shape}")
    elif kind == "regression" and y.ndim not in (1, 2):
        raise DatasetError(f"regression y must have shape (N,) or (N, K); got {y.shape}")
    _check_finite("y", y.astype(np.float64))
    if kind == "regression" or (kind == "per_step" and y.dtype.kind == "f"):
        return y.astype(np.float32), None
    return _check_labels(y[valid] if kind == "per_step" else y, y)


def _check_labels(used: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer class labels 0..K-1 (``used``: the labels that count, padding excluded)."""
    fractional = used[used % 1 != 0]
    if fractional.size:
        raise DatasetError(f"labels must be integers 0..K-1; found {fractional[0]}")
    if used.min() < 0:
        raise DatasetError(f"labels must be integers 0..K-1; found {int(used.min())}")
    n_classes = int(used.max()) + 1
    if n_classes > MAX_CLASSES:
        raise DatasetError(
            f"labels must be integers 0..K-1 with K <= {MAX_CLASSES}; found {int(used.max())}"
        )
    if n_classes < 2:
        raise DatasetError("classification needs at least 2 classes; every label is 0")
    return y.astype(np.int64), n_classes
