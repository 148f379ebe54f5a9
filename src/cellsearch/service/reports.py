"""The comparison report of a stored study (JSON and HTML)."""

from __future__ import annotations

from typing import Any

import optuna
from sqlalchemy import Engine

from cellsearch.search.report import ReportContext, build_report
from cellsearch.service.report_page import render_report_html
from cellsearch.service.studies import get_study
from cellsearch.service.study_states import head_of_queue, shown_status

PLOTLY_URL = "/api/v1/assets/plotly.min.js"


def study_report(
    *, engine: Engine, storage: optuna.storages.RDBStorage, name: str
) -> dict[str, Any]:
    """Build the report of study ``name`` from its trials."""
    record = get_study(engine=engine, name=name)
    study = optuna.load_study(study_name=record.name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
    status = shown_status(record, running_trials=running, head=head_of_queue(engine=engine))
    return build_report(trials, ReportContext.of(record.study_spec(), status=status))


def study_report_html(
    *,
    engine: Engine,
    storage: optuna.storages.RDBStorage,
    name: str,
    dashboard_url: str | None = None,
) -> str:
    """The report of study ``name`` as an HTML page (linked to optuna-dashboard's root
    ``dashboard_url`` when one is given)."""
    report = study_report(engine=engine, storage=storage, name=name)
    study_page = None
    if dashboard_url:
        study_id = storage.get_study_id_from_name(name)
        study_page = f"{dashboard_url.rstrip('/')}/dashboard/studies/{study_id}"
    return render_report_html(report, plotly_js=PLOTLY_URL, dashboard_url=study_page)
