"""Studies: create, list, inspect, pause/resume/cancel, delete, trials, report.

Reading needs a reader key, creating a submitter key; a submitter pauses, resumes,
cancels and deletes only the studies it created (an admin any of them).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

import optuna
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import TypeAdapter

from cellsearch.models import CELLS
from cellsearch.search.errors import SpecError
from cellsearch.search.report.model import StudyReport
from cellsearch.search.study.spec import NAME_PATTERN, StudySpec
from cellsearch.service.api.deps import (
    READ_LANE,
    ArtifactStoreDep,
    EngineDep,
    LimitQuery,
    MarkersDep,
    OffsetQuery,
    PageCacheDep,
    ReportCacheDep,
    SelectionCacheDep,
    SettingsDep,
    StorageDep,
    SummaryCacheDep,
)
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import Page, StudyDetail, StudyOut, TrialOut
from cellsearch.service.api.security import READER, Principal, Submitter
from cellsearch.service.artifacts.operations import best_models, study_bytes, sweep
from cellsearch.service.reports.assets import etags_of
from cellsearch.service.reports.study import cached_report, report_state
from cellsearch.service.store.marker_cache import FRESH, MarkerMemo
from cellsearch.service.studies import operations as ops
from cellsearch.service.studies.labels import objective_labels
from cellsearch.service.studies.spec_checks import spec_problems
from cellsearch.service.studies.states import shown_statuses, waiting_notes
from cellsearch.service.studies.summaries import study_counts, study_summary

router = APIRouter(prefix="/studies", tags=["studies"])
TrialStateName = Literal["running", "waiting", "complete", "pruned", "fail"]
CellName = StrEnum("CellName", {name: name for name in CELLS})  # type: ignore[misc]
"""A registered cell type, validated (and documented) as a query parameter."""
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="The study's name.")]
READ = errors(401, 403, 404, 422, 503)
CHANGE = errors(401, 403, 404, 409, 422, 503)
_TRIAL_PAGE = TypeAdapter(Page[TrialOut])
_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    **READ,
    200: {"model": StudyReport, "description": "The comparison report of the cell types."},
    304: {"description": "The client's copy (If-None-Match) is current."},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyDetail,
    responses=errors(401, 403, 409, 413, 422, 503),
)
def create_study(
    spec: StudySpec,
    settings: SettingsDep,
    engine: EngineDep,
    storage: StorageDep,
    cache: SummaryCacheDep,
    principal: Submitter,
) -> StudyDetail:
    """Create a study from a spec; workers start on it at once (a submitter key).

    422 names each invalid field (including this server's limits); 409 if the name is taken.
    """
    problems = spec_problems(spec=spec, settings=settings, engine=engine)
    if problems:
        raise SpecError(problems)
    record = ops.create_study(engine=engine, storage=storage, spec=spec, created_by=principal.name)
    return _detail(engine, cache, record.name, grace_period=settings.grace_period)


@router.get(
    "",
    response_model=Page[StudyOut],
    dependencies=[READ_LANE, READER],
    responses=errors(401, 403, 422, 503),
)
def list_studies(
    engine: EngineDep,
    settings: SettingsDep,
    cache: SummaryCacheDep,
    markers: MarkersDep,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 50,
) -> Page[StudyOut]:
    """Studies, newest first, with progress counts."""
    records, total = ops.list_studies(engine=engine, offset=offset, limit=limit)
    counts = study_counts(engine=engine, records=records, cache=cache, markers=markers)
    running = {name: c.running for name, c in counts.items()}
    shown = shown_statuses(engine=engine, records=records, running=running)
    notes = waiting_notes(
        engine=engine, records=records, running=running, grace_period=settings.grace_period
    )
    objectives = objective_labels(engine, records)
    items = [
        StudyOut.of(r, counts[r.name], shown[r.name], notes[r.name], objectives.get(r.name))
        for r in records
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get("/{name}", response_model=StudyDetail, dependencies=[READ_LANE, READER], responses=READ)
def get_study(
    name: NamePath,
    engine: EngineDep,
    settings: SettingsDep,
    cache: SummaryCacheDep,
    markers: MarkersDep,
) -> StudyDetail:
    """A study's spec, status, counts by trial state and best trial."""
    return _detail(engine, cache, name, markers, grace_period=settings.grace_period)


def _change(
    name: str, action: str, principal: Principal, engine: EngineDep, cache: SummaryCacheDep
) -> StudyDetail:
    ops.change_status(engine=engine, name=name, action=action, owner=principal.owner_filter)
    return _detail(engine, cache, name)


@router.post("/{name}/pause", response_model=StudyDetail, responses=CHANGE)
def pause_study(
    name: NamePath, principal: Submitter, engine: EngineDep, cache: SummaryCacheDep
) -> StudyDetail:
    """Pause a running study; running trials stop after their epoch and are requeued."""
    return _change(name, "pause", principal, engine, cache)


@router.post("/{name}/resume", response_model=StudyDetail, responses=CHANGE)
def resume_study(
    name: NamePath, principal: Submitter, engine: EngineDep, cache: SummaryCacheDep
) -> StudyDetail:
    """Resume a paused study."""
    return _change(name, "resume", principal, engine, cache)


@router.post("/{name}/cancel", response_model=StudyDetail, responses=CHANGE)
def cancel_study(
    name: NamePath, principal: Submitter, engine: EngineDep, cache: SummaryCacheDep
) -> StudyDetail:
    """Cancel a running or paused study for good."""
    return _change(name, "cancel", principal, engine, cache)


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401, 403, 404, 422, 503)
)
def delete_study(
    name: NamePath,
    principal: Submitter,
    engine: EngineDep,
    storage: StorageDep,
    store: ArtifactStoreDep,
) -> Response:
    """Delete the study and its Optuna study (trials and kept models included)."""
    ops.delete_study(engine=engine, storage=storage, name=name, owner=principal.owner_filter)
    sweep(engine=engine, store=store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{name}/trials",
    response_model=Page[TrialOut],
    dependencies=[READ_LANE, READER],
    responses=READ,
)
def list_trials(
    name: NamePath,
    engine: EngineDep,
    markers: MarkersDep,
    pages: PageCacheDep,
    selections: SelectionCacheDep,
    state: Annotated[list[TrialStateName] | None, Query()] = None,
    cell_type: CellName | None = None,
    offset: OffsetQuery = 0,
    limit: LimitQuery = 50,
) -> Response:
    """Trials by number, filtered by state (repeatable) and cell type."""
    states = [optuna.trial.TrialState[s.upper()] for s in state] if state else None

    def render(found: ops.TrialPage) -> bytes:
        # serialised once by pydantic-core: the records need no second validation
        page = Page(items=found.items, total=found.total, offset=offset, limit=limit)
        return _TRIAL_PAGE.dump_json(page)

    body = ops.trial_page(
        engine=engine,
        name=name,
        states=states,
        cell_type=None if cell_type is None else cell_type.value,
        offset=offset,
        limit=limit,
        render=render,
        markers=markers,
        cache=pages,
        ids=selections,
    )
    return Response(body, media_type="application/json")


@router.get("/{name}/report", dependencies=[READER], responses=_REPORT_RESPONSES)
def get_report(
    name: NamePath,
    request: Request,
    engine: EngineDep,
    cache: ReportCacheDep,
    markers: MarkersDep,
) -> Response:
    """The comparison report of cell types (JSON); built once per change of the study's
    trials, with an ETag (304 when the client's copy is current)."""
    state = report_state(engine=engine, name=name, markers=markers)
    return _conditional(
        request,
        state.etag,
        lambda: cached_report(engine=engine, state=state, cache=cache).body,
        "application/json",
    )


@router.get(
    "/{name}/report.html",
    response_class=HTMLResponse,
    dependencies=[READER],
    responses={
        **READ,
        303: {"description": "Not signed in: to the login page (browsers)."},
        304: {"description": "The client's copy (If-None-Match) is current."},
    },
)
def get_report_html(
    name: NamePath,
    request: Request,
    settings: SettingsDep,
    engine: EngineDep,
    cache: ReportCacheDep,
    markers: MarkersDep,
) -> Response:
    """The comparison report as a page with plots (plotly.js is linked, not inlined; trials
    link to optuna-dashboard when ``CELLSEARCH_DASHBOARD_URL`` is set; each cell type's
    best kept model has a download link). A browser without a session is sent to the login
    page."""
    state = report_state(
        engine=engine, name=name, markers=markers, grace_period=settings.grace_period
    )
    dashboard = settings.dashboard_url
    models = best_models(engine=engine, name=name)
    return _conditional(
        request,
        state.page_etag_of(models),
        lambda: cached_report(engine=engine, state=state, cache=cache).html(
            dashboard, state.note, models
        ),
        "text/html; charset=utf-8",
    )


def _conditional(
    request: Request, etag: str, body: Callable[[], bytes | str], media_type: str
) -> Response:
    """304 when the request names ``etag``; else ``body()``. Clients revalidate each time."""
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in etags_of(request.headers.get("if-none-match")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(content=body(), media_type=media_type, headers=headers)


def _detail(
    engine: EngineDep,
    cache: SummaryCacheDep,
    name: str,
    markers: MarkerMemo = FRESH,
    *,
    grace_period: float | None = None,
) -> StudyDetail:
    """The study's detail; with ``grace_period`` (which says which workers are alive), the
    note of a study that waits with no live worker."""
    record, counts, best = study_summary(engine=engine, name=name, cache=cache, markers=markers)
    running = {name: counts.running}
    shown = shown_statuses(engine=engine, records=[record], running=running)
    note = None
    if grace_period is not None:
        notes = waiting_notes(
            engine=engine, records=[record], running=running, grace_period=grace_period
        )
        note = notes[record.name]
    objective = objective_labels(engine, [record]).get(record.name)
    return StudyDetail(
        **StudyOut.of(record, counts, shown[record.name], note, objective).model_dump(),
        spec=record.spec,
        best_trial=best,
        artifact_bytes=study_bytes(engine=engine, names=[record.name])[record.name],
    )
