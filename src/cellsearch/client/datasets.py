"""Data sets through the client (``client.datasets``): upload a file, NumPy arrays or a
pandas DataFrame; list, find, delete.

Arrays are written as the NPZ the API reads (``x`` of shape (N, T, F) or (N, T),
optional ``y`` and ``lengths``); a DataFrame as the long-format CSV (``sequence_id``,
``step``, feature columns, optional ``label``). The server validates the content and
answers 422 naming the problem; nothing is stored then.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from cellsearch.client._transport import Transport
from cellsearch.client.errors import LocalFileError, NotFound
from cellsearch.client.records import Dataset


class Datasets:
    """The data sets of the API (``/api/v1/datasets``)."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def upload(
        self,
        data: str | os.PathLike[str] | Any = None,
        *,
        name: str,
        kind: str | None = None,
        x: Any = None,
        y: Any = None,
        lengths: Any = None,
    ) -> Dataset:
        """Validate and store a data set; a spec refers to it by the returned ``id``.

        Args:
            data: An ``.npz`` or ``.csv`` file's path, or a pandas DataFrame in the long
                format; or None, with the arrays below.
            name: A unique name (letters, digits, ``.``, ``_``, ``-``).
            kind: classification, regression, per_step or forecasting; None: inferred.
            x: Inputs, (N, T, F) or (N, T) (with ``data`` None).
            y: Labels or values: (N,), (N, K) or per step (N, T); optional.
            lengths: Valid steps per sequence, (N,); optional.

        Raises:
            InvalidRequest: the server refused the content (the reason in ``detail``).
            Conflict: a data set has the name.
            PayloadTooLarge: the upload exceeds the server's limit.
            LocalFileError: the file cannot be read.
        """
        filename, content = _encode(data, name, x=x, y=y, lengths=lengths)
        form = {"name": name} | ({"kind": kind} if kind else {})
        files = {"file": (filename, content)}
        answer = self._transport.request(
            "POST", "/datasets", subject="upload", files=files, data=form
        )
        return Dataset.parse(answer)

    def list(self) -> list[Dataset]:
        """Every data set, newest first."""
        return [Dataset.parse(d) for d in self._transport.request("GET", "/datasets")]

    def get(self, dataset_id: str) -> Dataset:
        """One data set by id."""
        return Dataset.parse(self._transport.request("GET", f"/datasets/{dataset_id}"))

    def find(self, ref: str) -> Dataset:
        """The data set whose id or name is ``ref`` (an id wins over a name).

        Raises:
            NotFound: none has it.
        """
        found = [d for d in self.list() if ref in (d.id, d.name)]
        if not found:
            raise NotFound(f"no data set has the id or name {ref!r}", status_code=404)
        return next((d for d in found if d.id == ref), found[0])

    def delete(self, ref: str | Dataset) -> Dataset:
        """Delete a data set (a record, or its id or name); returns what was deleted.

        Raises:
            NotFound: no data set has that id or name.
            Conflict: a study uses it.
        """
        found = ref if isinstance(ref, Dataset) else self.find(ref)
        self._transport.request("DELETE", f"/datasets/{found.id}")
        return found


def _encode(data: Any, name: str, *, x: Any, y: Any, lengths: Any) -> tuple[str, bytes]:
    """The file name and content of an upload."""
    arrays = {"x": x, "y": y, "lengths": lengths}
    if data is None:
        if x is None:
            raise TypeError("upload needs a file, a DataFrame, or the arrays x (and y, lengths)")
        return f"{name}.npz", _npz({k: v for k, v in arrays.items() if v is not None})
    if any(v is not None for v in arrays.values()):
        raise TypeError("upload takes a file or a DataFrame, or arrays: not both")
    if hasattr(data, "to_csv"):  # a pandas DataFrame in the long format
        return f"{name}.csv", data.to_csv(index=False).encode("utf-8")
    path = Path(data)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise LocalFileError(f"cannot read {path}: {exc}") from None


def _npz(arrays: dict[str, Any]) -> bytes:
    """The arrays as an NPZ file (numpy imported here only: a client that never uploads
    arrays never loads it)."""
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})  # type: ignore[arg-type]
    return buffer.getvalue()
