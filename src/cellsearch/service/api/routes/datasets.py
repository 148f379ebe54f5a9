"""Uploaded data sets: upload (validated), list, inspect, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from cellsearch.service import datasets as ops
from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.errors import PayloadTooLarge
from cellsearch.service.schemas import DatasetOut

router = APIRouter(prefix="/datasets", tags=["datasets"])
_CHUNK = 1 << 20


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DatasetOut)
async def upload_dataset(
    file: Annotated[UploadFile, File(description="An .npz or a long-format .csv file.")],
    name: Annotated[str, Form(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")],
    settings: SettingsDep,
    engine: EngineDep,
    kind: Annotated[
        str | None, Form(description="classification, regression, per_step or forecasting")
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
    record = ops.create_dataset(
        engine=engine,
        content=b"".join(chunks),
        filename=file.filename or "",
        name=name,
        kind=kind,
        max_bytes=limit,
    )
    return DatasetOut.model_validate(record, from_attributes=True)


@router.get("", response_model=list[DatasetOut])
def list_datasets(engine: EngineDep) -> list[DatasetOut]:
    """Every data set, newest first."""
    return [
        DatasetOut.model_validate(r, from_attributes=True) for r in ops.list_datasets(engine=engine)
    ]


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, engine: EngineDep) -> DatasetOut:
    """One data set's summary."""
    record = ops.get_dataset(engine=engine, dataset_id=dataset_id)
    return DatasetOut.model_validate(record, from_attributes=True)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(dataset_id: str, engine: EngineDep) -> Response:
    """Delete a data set; 409 while a study uses it."""
    ops.delete_dataset(engine=engine, dataset_id=dataset_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
