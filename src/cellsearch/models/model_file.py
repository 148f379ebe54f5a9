"""A trained model as one file: its weights and everything needed to build and use it.

The file is a `safetensors <https://huggingface.co/docs/safetensors>`_ file (nothing is
unpickled on load): the model's weights as tensors, and in its metadata, as JSON, the
model's configuration (cell type, sizes, options, head) and the context it was trained in
(study, trial, objective value, the task and its data's preparation). A search writes one
per kept trial (``GET /api/v1/studies/{name}/models/{cell}`` serves them);
:func:`load_model` turns one back into a ready :class:`SequenceModel`::

    model, info = load_model("best-gru.safetensors")
    model.eval()
    prediction = model(x)  # x: (B, T, info["model"]["input_size"])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

from cellsearch.models.errors import ModelError
from cellsearch.models.sequence import SequenceModel

FORMAT = "cellsearch-model-1"
_KEY = "cellsearch"


@dataclass(frozen=True)
class ModelSpec:
    """How to build the model: :class:`SequenceModel`'s arguments."""

    cell: str
    input_size: int
    hidden_size: int
    num_layers: int = 1
    dropout: float = 0.0
    output_size: int = 1
    head: str = "last"
    cell_options: dict[str, float] = field(default_factory=dict)

    def build(self) -> SequenceModel:
        """A fresh model of this shape (its weights are set by :func:`load_model`)."""
        return SequenceModel(
            self.cell,
            self.input_size,
            self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            output_size=self.output_size,
            head=self.head,  # type: ignore[arg-type]  # checked by SequenceModel
            cell_options=self.cell_options,
        )


def dump_model(weights: dict[str, Tensor], spec: ModelSpec, context: dict[str, Any]) -> bytes:
    """The bytes of a model file: ``weights`` (a ``state_dict``), the model's ``spec`` and
    the JSON-able ``context`` it was trained in."""
    meta = {"format": FORMAT, "model": spec.__dict__, **context}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    return save_tensors(tensors, metadata={_KEY: json.dumps(meta, allow_nan=True)})


def read_model(blob: bytes) -> tuple[SequenceModel, dict[str, Any]]:
    """A model file's bytes as a ready model (in eval mode) and its metadata.

    Raises:
        ModelError: the bytes are not a model file of this format, or its weights do not
            fit the model it describes.
    """
    try:
        size = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + size])
        meta = json.loads(header["__metadata__"][_KEY])
        tensors = load_tensors(blob)
    except Exception as exc:  # safetensors and json raise their own errors
        raise ModelError(f"not a cellsearch model file ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"a model file of format {meta.get('format')!r}, not {FORMAT!r}")
    model = ModelSpec(**meta["model"]).build()
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ModelError(f"its weights do not fit the model it describes: {exc}") from None
    return model.eval(), meta


def load_model(path: str | Path) -> tuple[SequenceModel, dict[str, Any]]:
    """The model in the file at ``path`` (see :func:`read_model`)."""
    return read_model(Path(path).read_bytes())
