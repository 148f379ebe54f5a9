"""The comparison report of a stored study (JSON and HTML)."""

from __future__ import annotations

from typing import Any

import optuna
from sqlalchemy import Engine

from cellsearch.search.report import ReportContext, build_report
from cellsearch.service.report_page import render_report_html
from cellsearch.service.studies import get_study

PLOTLY_URL = "/api/v1/assets/plotly.min.js"


def study_report(
    *, engine: Engine, storage: optuna.storages.RDBStorage, name: str
) -> dict[str, Any]:
    """Build the report of study ``name`` from its trials."""
    record = get_study(engine=engine, name=name)
    context = ReportContext.of(record.study_spec(), status=record.status)
    study = optuna.load_study(study_name=record.name, storage=storage)
    return build_report(study.get_trials(deepcopy=False), context)


def study_report_html(*, engine: Engine, storage: optuna.storages.RDBStorage, name: str) -> str:
    """The report of study ``name`` as an HTML page."""
    return render_report_html(
        study_report(engine=engine, storage=storage, name=name), plotly_js=PLOTLY_URL
    )
