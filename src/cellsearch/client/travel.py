"""A study travels through the client: ``Client.export`` and ``Client.import_``.

An export is streamed into ``NAME.cellsearch.zip`` (a ``.part`` file until it is whole,
so an interrupted download never leaves a file that looks complete); an import streams
the archive from its file. Both can take a while on a big study (the server builds or
reads every trial), so they wait up to :data:`TRAVEL_TIMEOUT` seconds for the answer.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from cellsearch.client._transport import Transport
from cellsearch.client.errors import LocalFileError
from cellsearch.client.records import Record

EXTENSION = ".cellsearch.zip"
TRAVEL_TIMEOUT = 600.0
"""Seconds an export or an import may take before the client gives up waiting."""


class ImportedStudy(Record):
    """The study an import made (``POST /studies/import``)."""

    name: str
    status: str
    trials: int
    models: int
    dataset_id: str | None = None
    notes: list[str] = Field(default_factory=list)


def export_study(
    transport: Transport, name: str, path: str | os.PathLike[str] | None, timeout: float
) -> Path:
    """Save study ``name``'s archive to ``path`` (default: ``NAME.cellsearch.zip``)."""
    target = Path(path) if path is not None else Path(f"{name}{EXTENSION}")
    partial = target.with_name(target.name + ".part")
    try:
        transport.download(f"/studies/{name}/export", partial, timeout=timeout)
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def import_study(
    transport: Transport, path: str | os.PathLike[str], name: str | None, timeout: float
) -> ImportedStudy:
    """Upload the archive at ``path`` as a study (named ``name``, else as it was)."""
    source = Path(path)
    try:
        file = source.open("rb")
    except OSError as exc:
        raise LocalFileError(f"cannot read {source}: {exc}") from None
    with file:
        answer = transport.request(
            "POST",
            "/studies/import",
            subject="archive",
            files={"file": (source.name, file, "application/zip")},
            data={"name": name} if name else None,
            timeout=timeout,
        )
    return ImportedStudy.parse(answer)
