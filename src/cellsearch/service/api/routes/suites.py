"""Suites: many tasks, one study template; create, list, inspect, lifecycle, delete, report.

Reading needs a reader key, creating a submitter key; a submitter pauses, resumes,
cancels and deletes only the suites it created (an admin any of them).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response, status
from fastapi.responses import HTMLResponse

from cellsearch.search.report.suite_model import SuiteReport
from cellsearch.service.api.deps import (
    ArtifactStoreDep,
    EngineDep,
    LimitQuery,
    OffsetQuery,
    SettingsDep,
    StorageDep,
)
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import Page, SuiteDetail, SuiteOut
from cellsearch.service.api.security import READER, Principal, Submitter
from cellsearch.service.artifacts.operations import sweep
from cellsearch.service.studies.spec_schema import published_suite_schema
from cellsearch.service.suites import operations as ops
from cellsearch.service.suites.spec import SUITE_NAME_PATTERN

router = APIRouter(prefix="/suites", tags=["suites"])
schema_router = APIRouter(tags=["suites"])
SuiteName = Annotated[str, Path(pattern=SUITE_NAME_PATTERN, description="The suite's name.")]
READ = errors(401, 403, 404, 422, 503)
CHANGE = errors(401, 403, 404, 409, 422, 503)

SuiteBody = Annotated[
    dict[str, Any],
    Body(
        description="A suite spec: {name, description?, tasks: [task spec, ...], study: a "
        "study spec without name and task}. Schema: GET /suite-spec-schema.",
        examples=[
            {
                "name": "demo",
                "tasks": [{"kind": "adding", "seq_len": 30}, {"kind": "digits"}],
                "study": {"budget": {"n_trials": 12, "max_epochs": 5}},
            }
        ],
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SuiteDetail,
    responses=errors(401, 403, 409, 413, 422, 503),
)
def create_suite(
    spec: SuiteBody,
    settings: SettingsDep,
    engine: EngineDep,
    storage: StorageDep,
    principal: Submitter,
) -> SuiteDetail:
    """Create a suite: one study per task, named `<suite>-<task>`, all or none.

    422 names each invalid field (the task by index and kind, or the template's field);
    409 if the suite's name or any study name it would make is taken.
    """
    plan = ops.validate_suite(spec, engine=engine, settings=settings)
    ops.create_suite(engine=engine, storage=storage, plan=plan, created_by=principal.name)
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=plan.name))


@router.get("", response_model=Page[SuiteOut], dependencies=[READER], responses=READ)
def list_suites(
    engine: EngineDep, offset: OffsetQuery = 0, limit: LimitQuery = 50
) -> Page[SuiteOut]:
    """Suites, newest first, with the progress of their studies."""
    views, total = ops.list_suites(engine=engine, offset=offset, limit=limit)
    return Page(items=[SuiteOut.of(v) for v in views], total=total, offset=offset, limit=limit)


@router.get("/{name}", response_model=SuiteDetail, dependencies=[READER], responses=READ)
def get_suite(name: SuiteName, engine: EngineDep) -> SuiteDetail:
    """A suite's spec, status and the progress of each of its studies."""
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=name))


def _change(name: str, action: str, principal: Principal, engine: EngineDep) -> SuiteDetail:
    ops.change_suite_status(engine=engine, name=name, action=action, owner=principal.owner_filter)
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=name))


@router.post("/{name}/pause", response_model=SuiteDetail, responses=CHANGE)
def pause_suite(name: SuiteName, principal: Submitter, engine: EngineDep) -> SuiteDetail:
    """Pause every running study of the suite (409 when none runs)."""
    return _change(name, "pause", principal, engine)


@router.post("/{name}/resume", response_model=SuiteDetail, responses=CHANGE)
def resume_suite(name: SuiteName, principal: Submitter, engine: EngineDep) -> SuiteDetail:
    """Resume every paused study of the suite (409 when none is paused)."""
    return _change(name, "resume", principal, engine)


@router.post("/{name}/cancel", response_model=SuiteDetail, responses=CHANGE)
def cancel_suite(name: SuiteName, principal: Submitter, engine: EngineDep) -> SuiteDetail:
    """Cancel every running or paused study of the suite for good."""
    return _change(name, "cancel", principal, engine)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, responses=READ)
def delete_suite(
    name: SuiteName,
    principal: Submitter,
    engine: EngineDep,
    storage: StorageDep,
    store: ArtifactStoreDep,
) -> Response:
    """Delete the suite and every study it made (trials and kept models included)."""
    ops.delete_suite(engine=engine, storage=storage, name=name, owner=principal.owner_filter)
    sweep(engine=engine, store=store)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/report", response_model=SuiteReport, dependencies=[READER], responses=READ)
def get_report(name: SuiteName, engine: EngineDep, storage: StorageDep) -> SuiteReport:
    """The cross-task ranking of cell types over the suite's finished studies (JSON)."""
    return ops.suite_report(engine=engine, storage=storage, name=name)


@router.get(
    "/{name}/report.html",
    response_class=HTMLResponse,
    dependencies=[READER],
    responses={**READ, 303: {"description": "Not signed in: to the login page (browsers)."}},
)
def get_report_html(name: SuiteName, engine: EngineDep, storage: StorageDep) -> HTMLResponse:
    """The cross-task report as a page, with the critical-difference diagram."""
    return HTMLResponse(ops.suite_report_html(engine=engine, storage=storage, name=name))


@schema_router.get("/suite-spec-schema", dependencies=[READER], responses=errors(401, 403, 503))
def suite_spec_schema(settings: SettingsDep) -> dict[str, Any]:
    """The JSON Schema of a suite spec, with this server's limits stated in it."""
    return published_suite_schema(settings.limits(), settings.max_suite_tasks)
