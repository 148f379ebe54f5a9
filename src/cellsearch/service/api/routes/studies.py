"""Studies: create, list, inspect, pause/resume/cancel, delete, trials, report."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

import optuna
from fastapi import APIRouter, Query, Response, status
from fastapi.responses import HTMLResponse

from cellsearch.models import CELLS
from cellsearch.search.errors import SpecError
from cellsearch.search.study.spec import StudySpec
from cellsearch.service import studies as ops
from cellsearch.service.api.deps import (
    EngineDep,
    LimitQuery,
    OffsetQuery,
    SettingsDep,
    StorageDep,
)
from cellsearch.service.reports import study_report, study_report_html
from cellsearch.service.schemas import Page, StudyDetail, StudyOut, TrialOut
from cellsearch.service.spec_checks import spec_problems
from cellsearch.service.study_states import shown_statuses

router = APIRouter(prefix="/studies", tags=["studies"])
TrialStateName = Literal["running", "waiting", "complete", "pruned", "fail"]
CellName = StrEnum("CellName", {name: name for name in CELLS})  # type: ignore[misc]
"""A registered cell type, validated (and documented) as a query parameter."""


@router.post("", status_code=status.HTTP_201_CREATED, response_model=StudyDetail)
def create_study(
    spec: StudySpec, settings: SettingsDep, engine: EngineDep, storage: StorageDep
) -> StudyDetail:
    """Create a study from a spec; workers start on it at once.

    422 names each invalid field (including this server's limits); 409 if the name is taken.
    """
    errors = spec_problems(spec=spec, settings=settings, engine=engine)
    if errors:
        raise SpecError(errors)
    record = ops.create_study(engine=engine, storage=storage, spec=spec)
    return _detail(engine, storage, record.name)


@router.get("", response_model=Page[StudyOut])
def list_studies(
    engine: EngineDep, offset: OffsetQuery = 0, limit: LimitQuery = 50
) -> Page[StudyOut]:
    """Studies, newest first, with progress counts."""
    records, total = ops.list_studies(engine=engine, offset=offset, limit=limit)
    counts = ops.trial_counts(engine=engine, names=[r.name for r in records])
    running = {name: c.running for name, c in counts.items()}
    shown = shown_statuses(engine=engine, records=records, running=running)
    items = [StudyOut.of(r, counts[r.name], shown[r.name]) for r in records]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get("/{name}", response_model=StudyDetail)
def get_study(name: str, engine: EngineDep, storage: StorageDep) -> StudyDetail:
    """A study's spec, status, counts by trial state and best trial."""
    return _detail(engine, storage, name)


@router.post("/{name}/{action}", response_model=StudyDetail)
def change_status(
    name: str,
    action: Literal["pause", "resume", "cancel"],
    engine: EngineDep,
    storage: StorageDep,
) -> StudyDetail:
    """Pause, resume or cancel; running trials stop within one epoch."""
    ops.change_status(engine=engine, name=name, action=action)
    return _detail(engine, storage, name)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_study(name: str, engine: EngineDep, storage: StorageDep) -> Response:
    """Delete the study and its Optuna study (trials included)."""
    ops.delete_study(engine=engine, storage=storage, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/trials", response_model=Page[TrialOut])
def list_trials(
    name: str,
    engine: EngineDep,
    storage: StorageDep,
    state: Annotated[list[TrialStateName] | None, Query()] = None,
    cell_type: CellName | None = None,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 50,
) -> Page[TrialOut]:
    """Trials by number, filtered by state (repeatable) and cell type."""
    record = ops.get_study(engine=engine, name=name)
    states = [optuna.trial.TrialState[s.upper()] for s in state] if state else None
    trials, total = ops.list_trials(
        storage=storage,
        name=record.name,
        states=states,
        cell_type=None if cell_type is None else cell_type.value,
        offset=offset,
        limit=limit,
    )
    return Page(items=[TrialOut.of(t) for t in trials], total=total, offset=offset, limit=limit)


@router.get("/{name}/report")
def get_report(name: str, engine: EngineDep, storage: StorageDep) -> dict[str, object]:
    """The comparison report of cell types (JSON)."""
    return study_report(engine=engine, storage=storage, name=name)


@router.get("/{name}/report.html", response_class=HTMLResponse)
def get_report_html(
    name: str, settings: SettingsDep, engine: EngineDep, storage: StorageDep
) -> HTMLResponse:
    """The comparison report as a page with plots."""
    page = study_report_html(
        engine=engine, storage=storage, name=name, dashboard_url=settings.dashboard_url
    )
    return HTMLResponse(page)


def _detail(engine: EngineDep, storage: StorageDep, name: str) -> StudyDetail:
    record = ops.get_study(engine=engine, name=name)
    counts = ops.trial_counts(engine=engine, names=[record.name])
    best = ops.best_trial(storage=storage, name=record.name)
    running = {record.name: counts[record.name].running}
    shown = shown_statuses(engine=engine, records=[record], running=running)
    return StudyDetail(
        **StudyOut.of(record, counts[record.name], shown[record.name]).model_dump(),
        spec=record.spec,
        best_trial=TrialOut.of(best) if best else None,
    )
