"""A study's trials as the client returns them: a list of :class:`Trial` records that
shows as a table in Jupyter and turns into data frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cellsearch.client import frames, html_views
from cellsearch.client.records import Trial

if TYPE_CHECKING:
    import pandas as pd


class TrialList(list[Trial]):
    """Trials in the order of their numbers (a plain list of :class:`Trial`)."""

    @property
    def raw(self) -> list[dict[str, Any]]:
        """The trials' JSON objects as the API sent them."""
        return [t.raw for t in self]

    def to_frame(self) -> pd.DataFrame:
        """One row per trial, a column per attribute and per parameter (``params_<name>``);
        needs pandas (``cellsearch[pandas]``)."""
        return frames.trials_frame(self)

    def curves_frame(self) -> pd.DataFrame:
        """The learning curves, long: one row per trial and epoch (needs pandas)."""
        return frames.curves_frame(self)

    def _repr_html_(self) -> str:
        return html_views.trials_html(self)
