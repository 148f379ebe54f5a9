"""A study travels: export one as an archive, import an archive as a study.

Exporting needs a reader key; importing a submitter key (or an admin's): the imported
study belongs to that key. The archive is written to (and an upload read from) a
temporary file in a worker thread, never on the event loop, and never held whole in
memory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from cellsearch.search.study.spec import NAME_PATTERN
from cellsearch.service.api.deps import ArtifactStoreDep, EngineDep, SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.security import READER, Submitter
from cellsearch.service.travel import layout
from cellsearch.service.travel.export import archive_name, export_study
from cellsearch.service.travel.importer import import_study

router = APIRouter(prefix="/studies", tags=["travel"])
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="The study's name.")]
_ARCHIVE = {
    200: {
        "description": "The study archive (zip): MANIFEST, study.json, report.json, "
        "optuna.sqlite3 (an Optuna storage optuna-dashboard opens), datasets/, models/.",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    },
    **errors(401, 403, 404, 409, 422, 503),
}


class ImportedOut(BaseModel):
    """The study an import made."""

    name: str
    status: str = Field(description="completed or cancelled as it was; paused if it ran.")
    trials: int = Field(description="Trials recreated, numbers and attributes as they were.")
    models: int = Field(description="Kept models recreated (each downloads as before).")
    dataset_id: str | None = Field(description="The data set its task reads here.")
    notes: list[str] = Field(description="What changed on the way, in words.")


@router.get(
    "/{name}/export", response_class=FileResponse, dependencies=[READER], responses=_ARCHIVE
)
def export(name: NamePath, engine: EngineDep, store: ArtifactStoreDep) -> FileResponse:
    """The study as one archive: its spec, every trial with its attributes and learning
    curve, the report as built, its uploaded data set and its kept models, with a MANIFEST
    of versions and checksums. 409 while a trial of it runs."""
    handle, path = tempfile.mkstemp(prefix="cellsearch-export-", suffix=layout.EXTENSION)
    try:
        with os.fdopen(handle, "wb") as target:
            export_study(engine=engine, store=store, name=name, target=target)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=archive_name(name),
        background=BackgroundTask(_remove, path),
    )


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportedOut,
    responses=errors(401, 403, 409, 413, 422, 503),
)
async def import_archive(
    file: Annotated[UploadFile, File(description="A study archive (GET /studies/{name}/export).")],
    settings: SettingsDep,
    engine: EngineDep,
    store: ArtifactStoreDep,
    principal: Submitter,
    name: Annotated[
        str | None,
        Form(pattern=NAME_PATTERN, description="A new name for the study; omitted: its own."),
    ] = None,
) -> ImportedOut:
    """Recreate the study of an archive on this server (any database): trials with their
    numbers and attributes, the report, the data set and the kept models. 409 if its name
    is taken (give ``name``); 422 (nothing stored) for a damaged, tampered or unsafe
    archive, or one past this server's limits."""
    made = await run_in_threadpool(
        lambda: import_study(
            engine=engine,
            store=store,
            settings=settings,
            source=file.file,
            name=name,
            created_by=principal.name,
        )
    )
    return ImportedOut(
        name=made.name,
        status=made.status,
        trials=made.trials,
        models=made.models,
        dataset_id=made.dataset_id,
        notes=made.notes,
    )
