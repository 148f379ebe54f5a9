"""Read a long-format CSV upload (one row per time step) into padded arrays, within limits.

The format is described in :mod:`cellsearch.search.tasks.file_formats`. Rows are read one
at a time into compact buffers (a sequence index, a step and the feature values per row,
as machine numbers rather than Python objects), so memory grows by about ``8 (F + 2)``
bytes per row; the header's feature count, the number of sequences, each sequence's
steps and the padded array's size are checked against :class:`UploadLimits` before
anything is allocated from them.
"""

from __future__ import annotations

import csv
import io
from array import array
from collections.abc import Iterator

import numpy as np

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.upload_limits import UploadLimits

REQUIRED = ("sequence_id", "step")


def read_csv(
    content: bytes, limits: UploadLimits | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``x`` (N, T, F) float64, ``lengths`` (N,) and integer or float labels (or None).

    Raises:
        DatasetError: the file is not a valid long-format CSV, or is over ``limits``.
    """
    if b"\x00" in content:
        raise DatasetError("not a valid CSV file: it contains NUL bytes (binary data?)")
    rows = _rows(content)
    header = [name.strip() for name in next(rows, [])]
    if not header:
        raise DatasetError("empty data: the CSV file has no header")
    features = _check_header(header, limits)
    reader = _Reader(header, features, limits)
    for line, row in enumerate(rows, start=2):
        reader.add(line, row)
    if not reader.sids:
        raise DatasetError("empty data: the CSV file has a header but no rows")
    return reader.arrays()


def _rows(content: bytes) -> Iterator[list[str]]:
    """The non-empty rows, decoded as they are read (no decoded copy of the whole file)."""
    text = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    try:
        for row in csv.reader(text):
            if row:
                yield row
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"not a valid CSV file: {_first_line(exc)}") from None


def _check_header(header: list[str], limits: UploadLimits | None) -> list[str]:
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DatasetError(
            f"missing required columns: {', '.join(missing)} "
            "(expected sequence_id, step, features..., optional label)"
        )
    if len(set(header)) != len(header):
        raise DatasetError("duplicate column names in the CSV header")
    features = [c for c in header if c not in (*REQUIRED, "label")]
    if not features:
        raise DatasetError("no feature columns: the CSV has only sequence_id, step and label")
    if limits is not None and len(features) > limits.max_features:
        raise DatasetError(
            f"the CSV has {len(features)} feature columns; this server's limit is "
            f"max_features={limits.max_features}"
        )
    return features


class _Reader:
    """Rows gathered into flat buffers: sequence index, step, feature values."""

    def __init__(self, header: list[str], features: list[str], limits: UploadLimits | None):
        self.header = header
        self.col = {name: i for i, name in enumerate(header)}
        self.feature_cols = [self.col[f] for f in features]
        self.features = features
        self.limits = limits
        self.sids: dict[str, int] = {}
        self.counts: list[int] = []
        self.labels: list[set[str]] = []
        self.seq = array("q")
        self.step = array("q")
        self.values = array("d")

    def add(self, line: int, row: list[str]) -> None:
        if len(row) != len(self.header):
            raise DatasetError(
                f"CSV line {line} has {len(row)} fields; the header has {len(self.header)}"
            )
        sid = row[self.col["sequence_id"]].strip()
        step = _number(row[self.col["step"]], line, "step", integer=True)
        index = self.sids.get(sid)
        if index is None:
            index = self._new_sequence(sid)
        self.counts[index] += 1
        if self.limits is not None and self.counts[index] > self.limits.max_steps:
            raise DatasetError(
                f"sequence {sid!r} has more than {self.limits.max_steps} steps; this server's "
                f"limit is max_seq_len={self.limits.max_steps}"
            )
        self.seq.append(index)
        self.step.append(int(step))
        self.values.extend(
            _number(row[c], line, f) for c, f in zip(self.feature_cols, self.features, strict=True)
        )
        if "label" in self.col:
            self.labels[index].add(row[self.col["label"]].strip())

    def _new_sequence(self, sid: str) -> int:
        if self.limits is not None and len(self.sids) >= self.limits.max_sequences:
            raise DatasetError(
                f"the CSV has more than {self.limits.max_sequences} sequences; this server's "
                f"limit is max_dataset_size={self.limits.max_sequences}"
            )
        self.sids[sid] = len(self.sids)
        self.counts.append(0)
        self.labels.append(set())
        return self.sids[sid]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        n, n_features = len(self.sids), len(self.features)
        seq = np.frombuffer(self.seq, dtype=np.int64)  # (R,)
        step = np.frombuffer(self.step, dtype=np.int64)  # (R,)
        values = np.frombuffer(self.values, dtype=np.float64).reshape(-1, n_features)  # (R, F)
        order = np.lexsort((step, seq))  # by sequence, then step
        seq, step, values = seq[order], step[order], values[order]
        same = (seq[1:] == seq[:-1]) & (step[1:] == step[:-1])
        if same.any():
            i = int(np.flatnonzero(same)[0])
            sid = next(s for s, k in self.sids.items() if k == int(seq[i]))
            raise DatasetError(f"duplicate (sequence_id, step) pair ({sid!r}, {int(step[i])})")
        lengths = np.asarray(self.counts, dtype=np.int64)  # (N,)
        longest = int(lengths.max())
        if self.limits is not None:
            self.limits.check_shape(n, longest, n_features)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # (N,)
        position = np.arange(len(seq)) - starts[seq]  # rank of each row within its sequence
        x = np.zeros((n, longest, n_features), dtype=np.float64)
        x[seq, position] = values
        y = _labels(self.labels, list(self.sids)) if "label" in self.col else None
        return x, lengths, y


def _number(text: str, line: int, column: str, integer: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(
            f"CSV line {line}, column {column!r}: {text!r} is not a number"
        ) from None
    if integer and not (value.is_integer() and abs(value) < 2**62):
        raise DatasetError(f"CSV line {line}, column {column!r}: {text!r} is not an integer")
    return value


def _labels(labels: list[set[str]], order: list[str]) -> np.ndarray:
    for sid, found in zip(order, labels, strict=True):
        if len(found) > 1:
            raise DatasetError(
                f"label must be constant within a sequence; {sid!r} has {', '.join(sorted(found))}"
            )
    texts = [next(iter(found)) for found in labels]
    try:
        return np.array([int(t) for t in texts], dtype=np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        return np.array([float(t) for t in texts], dtype=np.float64)
    except ValueError:
        bad = next(t for t in texts if not _is_number(t))
        raise DatasetError(
            f"labels must be integers 0..K-1 (or numbers for regression); found {bad!r}"
        ) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
