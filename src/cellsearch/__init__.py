"""cellsearch: hyperparameter search where the recurrent cell type is a hyperparameter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsearch.client import Client

__version__ = "0.1.0"
__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> Any:
    """``cellsearch.Client``, loaded on first use: ``import cellsearch`` stays light."""
    if name == "Client":
        from cellsearch.client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
