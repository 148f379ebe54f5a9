"""Trained models a study kept: list them, download one, load it (``client.models``).

A download is streamed to a file (never held whole in memory); :meth:`Models.load` reads
it back as a ready PyTorch model with :func:`cellsearch.models.model_file.load_model`,
which imports torch (only that method does).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellsearch.client._transport import Transport
from cellsearch.client.records import Record

if TYPE_CHECKING:
    from cellsearch.models.sequence import SequenceModel


class KeptModel(Record):
    """A model a study kept (``GET /studies/{name}/models``)."""

    cell_type: str | None
    trial_number: int
    value: float | None
    reevaluation: bool
    size_bytes: int
    download: str


class Models:
    """The kept models of studies; the names follow the CLI's ``cellsearch model`` commands."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def list(self, name: str) -> list[KeptModel]:
        """The models study ``name`` kept: the best completed trials of each cell type and
        every seed re-evaluation run."""
        return [
            KeptModel.parse(m) for m in self._transport.request("GET", f"/studies/{name}/models")
        ]

    def download(
        self,
        name: str,
        *,
        cell: str | None = None,
        trial: int | None = None,
        path: str | Path | None = None,
    ) -> Path:
        """Save one model to ``path`` (default: the name the server gives it, here); give
        ``cell`` (that cell type's best) or ``trial`` (that trial's). Returns the path."""
        if (cell is None) == (trial is None):
            raise ValueError("give cell= (a cell type's best model) or trial=, not both")
        route = (
            f"/studies/{name}/models/{cell}"
            if cell is not None
            else f"/studies/{name}/trials/{trial}/model"
        )
        return self._transport.download(route, path)

    def load(
        self, name: str, *, cell: str | None = None, trial: int | None = None
    ) -> tuple[SequenceModel, dict[str, Any]]:
        """A kept model, ready (eval mode), and what its file says of it (the task, the
        data seed, the trial and its values); imports torch."""
        from cellsearch.models.model_file import load_model

        with tempfile.TemporaryDirectory() as folder:
            saved = self.download(name, cell=cell, trial=trial, path=Path(folder) / "model")
            return load_model(saved)
