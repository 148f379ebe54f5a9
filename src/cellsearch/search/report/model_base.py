"""The base of the report's models: frozen, no unknown field, no NaN or infinity.

Standard library and pydantic only (see :mod:`cellsearch.search.report.model`).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict

ParamValue = bool | int | float | str | None
"""A hyperparameter's value (its JSON type is kept: 1 stays 1, 1.0 stays 1.0)."""


class ReportModel(BaseModel):
    """The base of every report model: frozen, no unknown field, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    def to_json(self) -> str:
        """Compact JSON: keys in field order, floats as Python writes them (``1e-05``)."""
        data = self.model_dump(mode="json")
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
