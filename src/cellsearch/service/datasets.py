"""Uploaded data sets: validate, store durably with a checksum, list, delete.

The content lives in the database (one ``LargeBinary`` column) so that workers on any
machine can read it through the same URL as everything else. Validation happens before
anything is written: a rejected upload stores nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from cellsearch.search.errors import DatasetError, FieldError
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.file_formats import parse_upload, summarize
from cellsearch.service.db import session_scope
from cellsearch.service.errors import Conflict, NotFound, PayloadTooLarge
from cellsearch.service.tables import DatasetRecord, StudyRecord

FORMATS = ("npz", "csv")


def format_of(filename: str) -> Literal["npz", "csv"]:
    """The upload format from a file name's extension.

    Raises:
        DatasetError: the extension is neither ``.npz`` nor ``.csv``.
    """
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in FORMATS:
        raise DatasetError(f"file {filename!r}: expected a .npz or .csv file")
    return suffix  # type: ignore[return-value]


def create_dataset(
    *, engine: Engine, content: bytes, filename: str, name: str, kind: str | None, max_bytes: int
) -> DatasetRecord:
    """Validate and store an upload.

    Raises:
        PayloadTooLarge: the file exceeds ``max_bytes``.
        DatasetError: the content is not a valid data set (the message names the problem).
        Conflict: a data set with this name exists.
    """
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"upload of {len(content)} bytes exceeds the limit of {max_bytes}")
    fmt = format_of(filename)
    dataset = parse_upload(content, fmt, kind=kind, max_bytes=max_bytes)
    info = summarize(dataset)
    record = DatasetRecord(
        id=uuid.uuid4().hex,
        name=name,
        format=fmt,
        kind=str(info["kind"]),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        n_sequences=int(info["n_sequences"]),  # type: ignore[call-overload]
        max_length=int(info["max_length"]),  # type: ignore[call-overload]
        n_features=int(info["n_features"]),  # type: ignore[call-overload]
        n_classes=info["n_classes"],
        content=content,
    )
    try:
        with session_scope(engine) as session:
            session.add(record)
    except IntegrityError:
        raise Conflict(f"a dataset named {name!r} already exists") from None
    return record


def list_datasets(*, engine: Engine) -> list[DatasetRecord]:
    """Every data set, newest first (content not loaded)."""
    with session_scope(engine) as session:
        rows = session.scalars(select(DatasetRecord).order_by(DatasetRecord.created_at.desc()))
        return list(rows)


def get_dataset(*, engine: Engine, dataset_id: str) -> DatasetRecord:
    """One data set (content not loaded); NotFound otherwise."""
    with session_scope(engine) as session:
        return DatasetRecord.find_or_raise(session, dataset_id)


def dataset_content(*, engine: Engine, dataset_id: str) -> tuple[bytes, str]:
    """The stored bytes and format of a data set, checked against its checksum."""
    with session_scope(engine) as session:
        record = DatasetRecord.find_or_raise(session, dataset_id)
        content, fmt, digest = record.content, record.format, record.sha256
    if hashlib.sha256(content).hexdigest() != digest:
        raise Conflict(f"dataset {dataset_id!r} is corrupted: its checksum does not match")
    return content, fmt


def studies_using(*, engine: Engine, dataset_id: str) -> list[str]:
    """Names of the studies whose task reads the data set."""
    with session_scope(engine) as session:
        rows = session.execute(select(StudyRecord.name, StudyRecord.spec)).all()
    return [n for n, spec in rows if spec.get("task", {}).get("dataset_id") == dataset_id]


def delete_dataset(*, engine: Engine, dataset_id: str) -> None:
    """Delete a data set that no study uses.

    Raises:
        NotFound: no such data set.
        Conflict: a study uses it (the message names the studies).
    """
    get_dataset(engine=engine, dataset_id=dataset_id)
    users = studies_using(engine=engine, dataset_id=dataset_id)
    if users:
        raise Conflict(
            f"dataset {dataset_id!r} is used by {', '.join(users)}; delete those studies first"
        )
    with session_scope(engine) as session:
        session.delete(DatasetRecord.find_or_raise(session, dataset_id))


def check_dataset_task(*, engine: Engine, spec: StudySpec, limits: SpecLimits) -> list[FieldError]:
    """Errors of a spec whose task reads an uploaded data set (unknown id, over limits)."""
    dataset_id = getattr(spec.task, "dataset_id", None)
    if dataset_id is None:
        return []
    loc = ("task", "dataset_id")
    try:
        record = get_dataset(engine=engine, dataset_id=dataset_id)
    except NotFound:
        return [
            FieldError(loc, f"unknown dataset {dataset_id!r}: upload it first (POST /datasets)")
        ]
    errors = []
    if record.max_length > limits.max_seq_len:
        errors.append(FieldError(loc, f"its sequences of {record.max_length} steps exceed "
                                      f"this server's limit max_seq_len={limits.max_seq_len}",
                                 "limit_exceeded"))  # fmt: skip
    if record.n_sequences > limits.max_dataset_size:
        errors.append(FieldError(loc, f"its {record.n_sequences} sequences exceed this "
                                      f"server's limit max_dataset_size={limits.max_dataset_size}",
                                 "limit_exceeded"))  # fmt: skip
    return errors
