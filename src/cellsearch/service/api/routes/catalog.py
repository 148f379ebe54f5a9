"""What can be searched: cells, tasks, and the spec's JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from cellsearch.models import CELLS
from cellsearch.search.tasks import TASKS
from cellsearch.service.api.deps import SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import CellOptionOut, CellOut, TaskOut
from cellsearch.service.api.security import READER
from cellsearch.service.errors import NotFound
from cellsearch.service.reports import assets
from cellsearch.service.studies.spec_schema import published_spec_schema

router = APIRouter(tags=["catalog"])
OPEN_ERRORS = errors(401, 403, 503)


@router.get("/cells", response_model=list[CellOut], dependencies=[READER], responses=OPEN_ERRORS)
def list_cells() -> list[CellOut]:
    """Every registered recurrent cell, with its equations and options."""
    return [
        CellOut(
            name=c.name,
            title=c.title,
            description=c.description,
            reference=c.reference,
            state_layout=list(c.state_layout),
            fused=c.fused,
            options=[CellOptionOut(**o.__dict__) for o in c.options],
            param_formula=(
                f"{c.counts.input}·H·I + {c.counts.recurrent}·H·H + {c.counts.vector}·H per "
                "layer (I: input size of the layer; layers after the first read I = H)"
            ),
            param_count_example=c.param_count(1, 64, 1),
        )
        for c in CELLS.values()
    ]


@router.get("/tasks", response_model=list[TaskOut], dependencies=[READER], responses=OPEN_ERRORS)
def list_tasks() -> list[TaskOut]:
    """Every task kind, with its trivial baseline and the JSON Schema of its spec."""
    return [
        TaskOut(
            kind=t.kind,
            title=t.title,
            description=t.description,
            baseline=t.baseline_description,
            parameters=t.spec.model_json_schema(),
        )
        for t in TASKS.values()
    ]


@router.get("/assets/{name}", include_in_schema=False, response_model=None)
def asset(name: str, request: Request) -> Response:
    """plotly.js from the installed plotly package, for the report pages (see
    :mod:`cellsearch.service.reports.assets`); 304 when the client's copy is current."""
    cache_control = assets.cache_control(name)
    if cache_control is None:
        raise NotFound(f"asset {name!r} not found")
    response = FileResponse(
        assets.PLOTLY_JS,
        media_type="text/javascript",
        headers={"Cache-Control": cache_control},
        stat_result=assets.PLOTLY_JS.stat(),  # sets ETag and Last-Modified now
    )
    etag = response.headers["etag"]
    if etag in assets.etags_of(request.headers.get("if-none-match")):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    return response


@router.get("/spec-schema", dependencies=[READER], responses=OPEN_ERRORS)
def spec_schema(settings: SettingsDep) -> dict[str, Any]:
    """The JSON Schema of a study spec, with this server's limits in it."""
    return published_spec_schema(settings.limits())
