"""cellsearch: hyperparameter search where the recurrent cell type is a hyperparameter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsearch.client import Client
    from cellsearch.models.model_file import load_model

__version__ = "0.1.0"
__all__ = ["Client", "__version__", "load_model"]


def __getattr__(name: str) -> Any:
    """``cellsearch.Client`` and ``cellsearch.load_model``, loaded on first use: ``import
    cellsearch`` stays light (``load_model`` imports torch)."""
    if name == "Client":
        from cellsearch.client import Client

        return Client
    if name == "load_model":
        from cellsearch.models.model_file import load_model

        return load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
