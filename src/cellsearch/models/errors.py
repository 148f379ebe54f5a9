"""Errors raised by :mod:`cellsearch.models`.

The hierarchy, drawn as a tree::

    ModelError                      base of every error this package raises
    ├── UnknownCellError            a cell name not in the registry (also a ValueError)
    ├── UnknownOptionError          an option the cell does not define (also a ValueError)
    └── StateError                  a state of the wrong layout or shape (also a ValueError)

Callers (the search and service layers) catch :class:`ModelError` and map it to their
own outcome; nothing here knows about HTTP or Optuna.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ModelError", "StateError", "UnknownCellError", "UnknownOptionError"]


class ModelError(Exception):
    """Base class of every error raised by :mod:`cellsearch.models`."""


class UnknownCellError(ModelError, ValueError):
    """A cell name that is not in the registry.

    Args:
        name: The name that was asked for.
        valid: The registered names, listed in the message.
    """

    def __init__(self, name: str, valid: Iterable[str]) -> None:
        self.name = name
        self.valid = tuple(sorted(valid))
        super().__init__(f"unknown cell {name!r}; valid cells: {', '.join(self.valid)}")


class UnknownOptionError(ModelError, ValueError):
    """A cell option that the cell does not define.

    Args:
        cell: The cell's registry name.
        option: The offending option name.
        valid: The options the cell does define, listed in the message.
    """

    def __init__(self, cell: str, option: str, valid: Iterable[str]) -> None:
        self.cell = cell
        self.option = option
        self.valid = tuple(valid)
        listed = ", ".join(self.valid) if self.valid else "none"
        super().__init__(f"unknown option {option!r} for cell {cell!r}; valid options: {listed}")


class StateError(ModelError, ValueError):
    """A recurrent state whose layout or shape does not match the stack."""
