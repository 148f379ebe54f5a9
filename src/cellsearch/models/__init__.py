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

from cellsearch.models.errors import ModelError, StateError, UnknownCellError, UnknownOptionError
from cellsearch.models.layers import RecurrentStack
from cellsearch.models.registry import CELLS, get_cell
from cellsearch.models.sequence import (
    SequenceModel,
    count_parameters,
    model_param_count,
    solve_hidden_size,
)
from cellsearch.models.spec import CellOption, CellSpec

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
