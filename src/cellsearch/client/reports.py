"""The reports as the client returns them: the server's typed models, with what a
notebook wants on top (HTML, data frames, plotly figures).

:class:`StudyReport` and :class:`SuiteReport` are subclasses of the server's models
(:mod:`cellsearch.search.report.model`, :mod:`~cellsearch.search.report.suite_model`):
every section and field is the server's, typed and documented there. They are parsed
leniently (:mod:`.lenient`): a newer server's extra fields are dropped with a warning,
not refused, and :attr:`raw` keeps the JSON as it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, PrivateAttr

from cellsearch.client import frames, html_views
from cellsearch.client.lenient import parse_lenient
from cellsearch.search.report import model, suite_model
from cellsearch.search.report.model import CellSummary, PairTest

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


class _FromJson(BaseModel):
    """A report parsed from the API's JSON, which it keeps as it came."""

    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def parse(cls, data: Any) -> Self:
        """The report of the API's JSON (fields this client does not know are dropped)."""
        report = parse_lenient(cls, data)
        report._raw = data
        return report

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON as the API sent it."""
        return self._raw if self._raw is not None else self.model_dump(mode="json")


class StudyReport(_FromJson, model.StudyReport):
    """The comparison report of a study's cell types (``GET /studies/{name}/report``).

    ``verdict`` answers the question in one line; ``cells`` has a summary per cell type,
    ``pairs`` the pairwise tests; :meth:`to_frame` is the per-cell table, :meth:`figures`
    the page's plots. In Jupyter the report shows as a table.
    """

    @property
    def cell_types(self) -> list[str]:
        """The cell types compared, in the report's order."""
        return [c.cell_type for c in self.cells]

    @property
    def pairs(self) -> list[PairTest]:
        """The pairwise tests of the cell types' search draws (empty before there are any)."""
        return list(self.comparison.pairs) if self.comparison is not None else []

    def best(self, cell_type: str | None = None) -> CellSummary | None:
        """The summary of ``cell_type``, or of the cell type the verdict names (None when
        it names none)."""
        name = cell_type or self.leader
        return None if name is None else self.cell(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per cell type (needs pandas: ``cellsearch[pandas]``)."""
        return frames.cells_frame(self)

    def pairs_frame(self) -> pd.DataFrame:
        """One row per pair of cell types and its test (needs pandas)."""
        return frames.pairs_frame(self.pairs)

    def figures(self) -> dict[str, go.Figure]:
        """The report page's plots as plotly figures, by name: ``evp`` (expected best after
        n trials), ``curves`` (learning curves), ``importance``, ``importance_cells``,
        ``scatter`` (value against parameter count), ``allocation``; only those the report
        has data for."""
        import plotly.graph_objects as go

        from cellsearch.service.reports.figures import figures  # plain dicts, no server deps

        found = {}
        for spec in figures(self):
            layout = {**spec["layout"], "title": {"text": spec["title"]}}
            name = str(spec["id"]).removeprefix("plot-").replace("-", "_")
            found[name] = go.Figure(data=spec["data"], layout=layout)
        return found

    def _repr_html_(self) -> str:
        return html_views.report_html(self)


class SuiteReport(_FromJson, suite_model.SuiteReport):
    """The cross-task report of a suite (``GET /suites/{name}/report``): ``verdict``,
    ``scores`` per task and cell type, ``comparison`` (ranks, Friedman, pairs)."""

    def to_frame(self) -> pd.DataFrame:
        """One row per task and cell type: score, interval, rank (needs pandas)."""
        return frames.suite_scores_frame(self)

    def _repr_html_(self) -> str:
        return html_views.suite_report_html(self)
