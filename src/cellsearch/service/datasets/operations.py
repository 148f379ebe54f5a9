"""Uploaded data sets: validate, store durably with a checksum, list, delete.

The content lives in the database (one ``LargeBinary`` column) so that workers on any
machine can read it through the same URL as everything else. Validation happens before
anything is written: a rejected upload stores nothing.

A study refers to the data set its task reads by a foreign key
(``cellsearch_studies.dataset_id``), so the database decides between a delete and a
submit that race: the delete removes the data set only while no study refers to it (one
conditional statement; on PostgreSQL the key's own check refuses it too), and a submit
confirms, inside its own transaction and after its study row is written, that the data
set is still there (:func:`confirm_dataset`). Whichever comes second fails cleanly.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Literal

from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cellsearch.search.errors import DatasetError, FieldError, SpecError
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.upload_limits import UploadLimits
from cellsearch.service.datasets.parsing import summarize_in_child
from cellsearch.service.errors import Conflict, Forbidden, NotFound, PayloadTooLarge
from cellsearch.service.store.db import connection_scope, session_scope
from cellsearch.service.store.tables import DatasetRecord, StudyRecord

FORMATS = ("npz", "csv")


def format_of(filename: str, content: bytes = b"") -> Literal["npz", "csv"]:
    """The upload format from a file name's extension, or else from its content (an NPZ
    is a zip archive; a file named ``data`` or ``data.zip`` that is one is read as NPZ).

    Raises:
        DatasetError: the extension is neither ``.npz`` nor ``.csv`` and the content is
            not a zip archive.
    """
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix in FORMATS:
        return suffix  # type: ignore[return-value]
    if content.startswith(b"PK\x03\x04"):
        return "npz"
    raise DatasetError(f"file {filename!r}: expected a .npz or .csv file")


def upload_limits(limits: SpecLimits, max_bytes: int) -> UploadLimits:
    """The bounds on an upload under a deployment's spec limits and upload size."""
    return UploadLimits(
        max_bytes=max_bytes,
        max_sequences=limits.max_dataset_size,
        max_steps=limits.max_seq_len,
        max_features=limits.max_features,
    )


def create_dataset(
    *,
    engine: Engine,
    content: bytes,
    filename: str,
    name: str,
    kind: str | None,
    max_bytes: int,
    limits: SpecLimits | None = None,
    created_by: str | None = None,
) -> DatasetRecord:
    """Validate (in the parsing process) and store an upload; it blocks the calling thread
    for a while, so call it off the event loop.

    ``limits`` bound the sequences, steps and features (checked before the arrays are
    allocated); ``created_by`` is the uploading key's name.

    Raises:
        PayloadTooLarge: the file exceeds ``max_bytes``.
        DatasetError: the content is not a valid data set (the message names the problem).
        Conflict: a data set with this name exists.
    """
    if len(content) > max_bytes:
        raise PayloadTooLarge(f"upload of {len(content)} bytes exceeds the limit of {max_bytes}")
    fmt = format_of(filename, content)
    bounds = upload_limits(limits or SpecLimits(), max_bytes)
    info = summarize_in_child(content, fmt, kind=kind, max_bytes=max_bytes, limits=bounds)
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
        created_by=created_by,
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
        return _users(session, dataset_id)


def _users(session: Session, dataset_id: str) -> list[str]:
    query = select(StudyRecord.name).where(StudyRecord.dataset_id == dataset_id)
    return list(session.scalars(query.order_by(StudyRecord.name)))


def delete_dataset(*, engine: Engine, dataset_id: str, owner: str | None = None) -> None:
    """Delete a data set that no study uses (in one conditional statement: a study
    submitted at the same moment either refers to it first, and the delete is refused,
    or finds it gone).

    Args:
        owner: Only a data set uploaded by this key may be deleted (None: any).

    Raises:
        NotFound: no such data set.
        Forbidden: another key than ``owner`` uploaded it.
        Conflict: a study uses it (the message names the studies).
    """
    record = get_dataset(engine=engine, dataset_id=dataset_id)
    if owner is not None and record.created_by != owner:
        raise Forbidden(
            f"dataset {dataset_id!r} was uploaded by another key; a submitter deletes only "
            "its own data sets (an admin key may delete any)"
        )
    unused = ~exists().where(StudyRecord.dataset_id == dataset_id)
    try:
        with connection_scope(engine) as connection:
            deleted = connection.execute(
                delete(DatasetRecord).where(DatasetRecord.id == dataset_id, unused)
            ).rowcount
    except IntegrityError:  # PostgreSQL: a study referred to it meanwhile
        deleted = 0
    if deleted:
        return
    with session_scope(engine) as session:
        users = _users(session, dataset_id)
        if users:
            raise Conflict(
                f"dataset {dataset_id!r} is used by {', '.join(users)}; delete those studies first"
            )
    raise NotFound(f"dataset {dataset_id!r} not found")  # a concurrent delete won


def confirm_dataset(session: Session, record: StudyRecord) -> None:
    """Check, in the transaction that writes ``record``, that its data set still exists.

    Call it after the study row is flushed: from then on the row refers to the data set,
    so no delete can remove it (SQLite lets one transaction write at a time; PostgreSQL's
    foreign key holds the data set's row). A data set deleted before that point is a 422
    naming ``task.dataset_id``, and the caller's transaction is rolled back.

    Raises:
        SpecError: the data set is gone.
    """
    if record.dataset_id is None:
        return
    found = select(DatasetRecord.id).where(DatasetRecord.id == record.dataset_id)
    if session.scalar(found) is None:
        raise SpecError([_gone(record.dataset_id)])


def check_dataset_exists(*, engine: Engine, spec: StudySpec) -> None:
    """Raise the 422 of :func:`confirm_dataset` if the data set ``spec`` reads is gone
    (after a failed insert: on PostgreSQL the foreign key refuses a row whose data set was
    deleted meanwhile).

    Raises:
        SpecError: the data set is gone.
    """
    dataset_id = getattr(spec.task, "dataset_id", None)
    if dataset_id is None:
        return
    with session_scope(engine) as session:
        if session.get(DatasetRecord, dataset_id) is None:
            raise SpecError([_gone(dataset_id)])


def _gone(dataset_id: str) -> FieldError:
    return FieldError(
        ("task", "dataset_id"),
        f"unknown dataset {dataset_id!r}: it was deleted; upload it again (POST /datasets)",
    )


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
