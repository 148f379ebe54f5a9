"""Recurrent cells behind one contract, and the sequence model built on them.

PyTorch only: this package never imports Optuna, :mod:`cellsearch.search` or
:mod:`cellsearch.service`.

Example:
    >>> from cellsearch.models import SequenceModel, get_cell
    >>> get_cell("gru").state_layout
    ('h',)
    >>> model = SequenceModel("mingru", input_size=2, hidden_size=16)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellsearch.models.catalog import CELLS, get_cell
from cellsearch.models.cell_spec import CellOption, CellSpec
from cellsearch.models.errors import ModelError, StateError, UnknownCellError, UnknownOptionError

if TYPE_CHECKING:
    from cellsearch.models.layers import RecurrentStack
    from cellsearch.models.sequence import (
        SequenceModel,
        count_parameters,
        model_param_count,
        solve_hidden_size,
    )

# Names whose modules import torch, loaded on first use so that the catalog (and the
# API process that serves it) stays free of torch.
_FROM_SEQUENCE = ("SequenceModel", "count_parameters", "model_param_count", "solve_hidden_size")


def __getattr__(name: str) -> Any:
    if name == "RecurrentStack":
        from cellsearch.models.layers import RecurrentStack

        return RecurrentStack
    if name in _FROM_SEQUENCE:
        from cellsearch.models import sequence

        return getattr(sequence, name)
    raise AttributeError(f"module 'cellsearch.models' has no attribute {name!r}")


__all__ = [
    "CELLS",
    "CellOption",
    "CellSpec",
    "ModelError",
    "RecurrentStack",
    "SequenceModel",
    "StateError",
    "UnknownCellError",
    "UnknownOptionError",
    "count_parameters",
    "get_cell",
    "model_param_count",
    "solve_hidden_size",
]
