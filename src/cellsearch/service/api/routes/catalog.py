"""What can be searched: cells, tasks, and the spec's JSON Schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from cellsearch.models import CELLS
from cellsearch.search.spec import StudySpec
from cellsearch.search.task_specs import TASKS
from cellsearch.service.schemas import CellOptionOut, CellOut, TaskOut

router = APIRouter(tags=["catalog"])


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
            param_count_example=c.param_count(1, 64, 1),
        )
        for c in CELLS.values()
    ]


@router.get("/tasks", response_model=list[TaskOut])
def list_tasks() -> list[TaskOut]:
    """Every built-in task, with its trivial baseline."""
    return [
        TaskOut(
            kind=t.kind, title=t.title, description=t.description, baseline=t.baseline_description
        )
        for t in TASKS.values()
    ]


@router.get("/spec-schema")
def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a study spec."""
    return StudySpec.model_json_schema()
