"""What can be searched: cells, tasks, and the spec's JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter
from fastapi.responses import FileResponse

from cellsearch.models import CELLS
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import TASKS
from cellsearch.service.schemas import CellOptionOut, CellOut, TaskOut

router = APIRouter(tags=["catalog"])
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@router.get("/cells", response_model=list[CellOut])
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


@router.get("/tasks", response_model=list[TaskOut])
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


@router.get("/assets/plotly.min.js", include_in_schema=False)
def plotly_js() -> FileResponse:
    """plotly.js from the installed plotly package, for the report pages."""
    return FileResponse(
        PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/spec-schema")
def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a study spec."""
    return StudySpec.model_json_schema()
