"""cellsearch: hyperparameter search where the recurrent cell type is a hyperparameter."""

from __future__ import annotations

__version__ = "0.1.0"
