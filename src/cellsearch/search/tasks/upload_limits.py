"""Bounds on an uploaded data set, checked before anything large is decompressed or allocated.

An NPZ member declares its dtype and shape in its ``.npy`` header, which sits in the
first bytes of the member: reading it decompresses a few hundred bytes, so a file that
claims ten billion float64 values, or 95,000 steps per sequence, is refused before
numpy allocates anything. A CSV is read row by row into compact buffers, with its
header's feature count and each sequence's steps counted as they arrive.

The limits are a deployment's (the service passes its settings): sequences, steps per
sequence and features per step as for a study spec, and ``max_bytes`` for both the
file and its decompressed content. ``x`` is held as float32 once read, so it may hold
at most ``max_bytes / 4`` values.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass

import numpy as np

from cellsearch.search.errors import DatasetError

__all__ = ["UploadLimits", "check_npz_headers"]

_FLOAT32_BYTES = 4


@dataclass(frozen=True)
class UploadLimits:
    """A deployment's bounds on an upload (the defaults match the spec limits').

    Attributes:
        max_bytes: Largest file, and largest decompressed NPZ content.
        max_sequences: Most sequences (``max_dataset_size``).
        max_steps: Most steps per sequence (``max_seq_len``).
        max_features: Most features per step (``max_features``).
    """

    max_bytes: int = 100_000_000
    max_sequences: int = 1_000_000
    max_steps: int = 5000
    max_features: int = 1024

    @property
    def max_values(self) -> int:
        """Most values of ``x`` (held as float32, within ``max_bytes``)."""
        return self.max_bytes // _FLOAT32_BYTES

    def check_shape(self, n: int, steps: int, features: int) -> None:
        """Refuse ``x`` of shape ``(n, steps, features)`` over the limits.

        Raises:
            DatasetError: naming the dimension and the limit.
        """
        if n > self.max_sequences:
            raise DatasetError(
                f"x has {n} sequences; this server's limit is max_dataset_size={self.max_sequences}"
            )
        if steps > self.max_steps:
            raise DatasetError(
                f"x has {steps} steps per sequence; this server's limit is "
                f"max_seq_len={self.max_steps}"
            )
        if features > self.max_features:
            raise DatasetError(
                f"x has {features} features per step; this server's limit is "
                f"max_features={self.max_features}"
            )
        if n * steps * features > self.max_values:
            raise DatasetError(
                f"x of shape ({n}, {steps}, {features}) holds {n * steps * features} values; "
                f"this server holds at most {self.max_values} (max_upload_bytes / 4, as float32)"
            )


def check_npz_headers(archive: zipfile.ZipFile, limits: UploadLimits) -> None:
    """Read each member's ``.npy`` header and refuse what is over the limits.

    Raises:
        DatasetError: a member is not a ``.npy`` array, holds Python objects, declares more
            bytes than ``max_bytes`` (all members together), or ``x`` has a shape over the
            limits.
    """
    total = 0
    for info in archive.infolist():
        name = info.filename.removesuffix(".npy")
        shape, dtype = _npy_header(archive, info)
        if dtype.hasobject:
            raise DatasetError(f"array {name!r} holds Python objects; only numbers are accepted")
        total += math.prod(shape) * dtype.itemsize
        if total > limits.max_bytes:
            raise DatasetError(
                f"the NPZ arrays declare {total} bytes or more (decompressed); this server's "
                f"limit is {limits.max_bytes} bytes"
            )
        if name == "x" and len(shape) in (2, 3):
            n, steps = shape[0], shape[1]
            limits.check_shape(n, steps, shape[2] if len(shape) == 3 else 1)


def _npy_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> tuple[tuple[int, ...], np.dtype]:
    try:
        with archive.open(info) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatasetError(
            f"not a valid NPZ file: member {info.filename!r} is not a .npy array ({text})"
        ) from None
    return tuple(int(d) for d in shape), np.dtype(dtype)
