"""Trained models a study kept: list them, download one (a trial's, or a cell type's best).

A download streams one safetensors file (weights, the model's configuration and the task
it was trained on); ``cellsearch.load_model`` turns it back into a ready model. Reading
needs a reader key where keys are required.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from cellsearch.search.study.spec import NAME_PATTERN
from cellsearch.service.api.deps import ArtifactStoreDep, EngineDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.security import READER
from cellsearch.service.artifacts import operations as ops

router = APIRouter(prefix="/studies", tags=["models"], dependencies=[READER])
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="The study's name.")]
CellPath = Annotated[
    str, Path(pattern=r"^[a-z0-9_]{1,64}$", description="A cell type the study searches.")
]
NumberPath = Annotated[int, Path(ge=0, le=2**31 - 1, description="The trial's number.")]
_ERRORS = errors(401, 403, 404, 422, 503)
_FILE = {
    200: {
        "description": "The model file (safetensors): weights, configuration, task.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    **_ERRORS,
}


class ModelOut(BaseModel):
    """A kept model."""

    cell_type: str | None
    trial_number: int
    value: float | None = Field(description="Its trial's objective value.")
    reevaluation: bool = Field(description="A seed re-evaluation run's model.")
    size_bytes: int
    download: str = Field(description="Its path under /api/v1.")


@router.get(
    "/{name}/models", response_model=list[ModelOut], responses=errors(401, 403, 404, 422, 503)
)
def list_models(name: NamePath, engine: EngineDep) -> list[ModelOut]:
    """The models the study kept: the best completed trials of each cell type (and every
    seed re-evaluation run), by cell type and value."""
    return [
        ModelOut(
            cell_type=m.cell_type,
            trial_number=m.trial_number,
            value=m.value,
            reevaluation=m.reevaluation,
            size_bytes=m.size_bytes,
            download=f"/studies/{name}/trials/{m.trial_number}/model",
        )
        for m in ops.kept_models(engine=engine, name=name)
    ]


@router.get("/{name}/models/{cell}", response_class=StreamingResponse, responses=_FILE)
def best_model(
    name: NamePath, cell: CellPath, engine: EngineDep, store: ArtifactStoreDep
) -> StreamingResponse:
    """The model of the cell type's best completed search trial."""
    return _download(ops.best_model(engine=engine, name=name, cell_type=cell), store)


@router.get("/{name}/trials/{number}/model", response_class=StreamingResponse, responses=_FILE)
def trial_model(
    name: NamePath, number: NumberPath, engine: EngineDep, store: ArtifactStoreDep
) -> StreamingResponse:
    """The kept model of one trial (404 says why a trial has none)."""
    return _download(ops.trial_model(engine=engine, name=name, number=number), store)


def _download(model: ops.ModelDownload, store: object) -> StreamingResponse:
    chunks = ops.stream(store, model.entry.id)
    headers = {
        "Content-Disposition": f'attachment; filename="{model.filename}"',
        "Content-Length": str(model.entry.size_bytes),
    }
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
