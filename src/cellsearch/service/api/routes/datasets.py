"""Uploaded data sets: upload (validated), list, inspect, delete.

Reading needs a reader key; uploading a submitter key, which deletes only the data sets
it uploaded (an admin any). An upload is parsed in a worker thread, never on the event
loop, so that the server answers other requests (``/healthz`` included) meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Path, Response, UploadFile, status
from pydantic.json_schema import SkipJsonSchema
from starlette.concurrency import run_in_threadpool

from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.schemas import DatasetOut
from cellsearch.service.api.security import READER, Submitter
from cellsearch.service.datasets import operations as ops
from cellsearch.service.errors import PayloadTooLarge

router = APIRouter(prefix="/datasets", tags=["datasets"])
_CHUNK = 1 << 20
DatasetId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The data set's id.")]
Kind = Literal["classification", "regression", "per_step", "forecasting"]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut,
    responses=errors(401, 403, 409, 413, 422, 503),
)
async def upload_dataset(
    file: Annotated[UploadFile, File(description="An .npz or a long-format .csv file.")],
    name: Annotated[str, Form(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")],
    settings: SettingsDep,
    engine: EngineDep,
    principal: Submitter,
    kind: Annotated[
        Kind | SkipJsonSchema[None], Form(description="The task kind; omitted: inferred.")
    ] = None,
) -> DatasetOut:
    """Validate and store a data set; 422 names the problem, 413 if too large, 409 if the
    name is taken. Nothing is stored when validation fails."""
    limit = settings.max_upload_bytes
    chunks, size = [], 0
    while chunk := await file.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    record = await run_in_threadpool(
        lambda: ops.create_dataset(
            engine=engine,
            content=b"".join(chunks),
            filename=file.filename or "",
            name=name,
            kind=kind,
            max_bytes=limit,
            limits=settings.limits(),
            created_by=principal.name,
        )
    )
    return DatasetOut.model_validate(record, from_attributes=True)


@router.get(
    "", response_model=list[DatasetOut], dependencies=[READER], responses=errors(401, 403, 503)
)
def list_datasets(engine: EngineDep) -> list[DatasetOut]:
    """Every data set, newest first."""
    return [
        DatasetOut.model_validate(r, from_attributes=True) for r in ops.list_datasets(engine=engine)
    ]


@router.get(
    "/{dataset_id}",
    response_model=DatasetOut,
    dependencies=[READER],
    responses=errors(401, 403, 404, 422, 503),
)
def get_dataset(dataset_id: DatasetId, engine: EngineDep) -> DatasetOut:
    """One data set's summary."""
    record = ops.get_dataset(engine=engine, dataset_id=dataset_id)
    return DatasetOut.model_validate(record, from_attributes=True)


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(401, 403, 404, 409, 422, 503),
)
def delete_dataset(dataset_id: DatasetId, principal: Submitter, engine: EngineDep) -> Response:
    """Delete a data set; 409 while a study uses it."""
    ops.delete_dataset(engine=engine, dataset_id=dataset_id, owner=principal.owner_filter)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
