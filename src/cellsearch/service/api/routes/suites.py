"""Suites: many tasks, one study template; create, list, inspect, lifecycle, delete, report."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response, status
from fastapi.responses import HTMLResponse

from cellsearch.service import suites as ops
from cellsearch.service.api.deps import (
    EngineDep,
    LimitQuery,
    OffsetQuery,
    SettingsDep,
    StorageDep,
)
from cellsearch.service.schemas import Page, SuiteDetail, SuiteOut
from cellsearch.service.suite_spec import SuiteSpecSchema

router = APIRouter(prefix="/suites", tags=["suites"])
schema_router = APIRouter(tags=["suites"])

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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SuiteDetail)
def create_suite(
    spec: SuiteBody, settings: SettingsDep, engine: EngineDep, storage: StorageDep
) -> SuiteDetail:
    """Create a suite: one study per task, named `<suite>-<task>`, all or none.

    422 names each invalid field (the task by index and kind, or the template's field);
    409 if the suite's name or any study name it would make is taken.
    """
    plan = ops.validate_suite(spec, engine=engine, settings=settings)
    ops.create_suite(engine=engine, storage=storage, plan=plan)
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=plan.name))


@router.get("", response_model=Page[SuiteOut])
def list_suites(
    engine: EngineDep, offset: OffsetQuery = 0, limit: LimitQuery = 50
) -> Page[SuiteOut]:
    """Suites, newest first, with the progress of their studies."""
    views, total = ops.list_suites(engine=engine, offset=offset, limit=limit)
    return Page(items=[SuiteOut.of(v) for v in views], total=total, offset=offset, limit=limit)


@router.get("/{name}", response_model=SuiteDetail)
def get_suite(name: str, engine: EngineDep) -> SuiteDetail:
    """A suite's spec, status and the progress of each of its studies."""
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=name))


@router.post("/{name}/{action}", response_model=SuiteDetail)
def change_status(
    name: str, action: Literal["pause", "resume", "cancel"], engine: EngineDep
) -> SuiteDetail:
    """Pause, resume or cancel every study of the suite to which the action applies.

    409 when it applies to none (e.g. resuming a suite with no paused study).
    """
    ops.change_suite_status(engine=engine, name=name, action=action)
    return SuiteDetail.of_view(ops.get_suite(engine=engine, name=name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_suite(name: str, engine: EngineDep, storage: StorageDep) -> Response:
    """Delete the suite and every study it made (trials included)."""
    ops.delete_suite(engine=engine, storage=storage, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/report")
def get_report(name: str, engine: EngineDep, storage: StorageDep) -> dict[str, Any]:
    """The cross-task ranking of cell types over the suite's finished studies (JSON)."""
    return ops.suite_report(engine=engine, storage=storage, name=name)


@router.get("/{name}/report.html", response_class=HTMLResponse)
def get_report_html(name: str, engine: EngineDep, storage: StorageDep) -> HTMLResponse:
    """The cross-task report as a page, with the critical-difference diagram."""
    return HTMLResponse(ops.suite_report_html(engine=engine, storage=storage, name=name))


@schema_router.get("/suite-spec-schema")
def suite_spec_schema() -> dict[str, Any]:
    """The JSON Schema of a suite spec."""
    return SuiteSpecSchema.model_json_schema()
