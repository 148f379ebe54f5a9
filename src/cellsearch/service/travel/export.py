"""A stored study into a study archive (:mod:`.layout`): everything read in one transaction.

The service's record, every trial (read in bulk), the study's own Optuna rows, its kept
models' index rows and its uploaded data set are read in one transaction, so the archive
is one consistent state of the study; the report is built from those very trials. A study
with a running trial is not exported (409): an archive holds finished work, and a running
trial's copy would run nowhere. Kept models are streamed from the artifact store into the
archive and checked against the index's checksums on the way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

import cellsearch
from cellsearch.search.optuna_adapter import (
    bulk_read,
    bulk_write,
    listed_artifacts,
    relisted_artifacts,
)
from cellsearch.search.report import build_report
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.artifacts.operations import stream
from cellsearch.service.errors import Conflict
from cellsearch.service.reports.study import report_state, study_context
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import ArtifactRecord, DatasetRecord, StudyRecord
from cellsearch.service.studies.operations import read_stored
from cellsearch.service.travel import layout
from cellsearch.service.travel.archive import ArchiveWriter
from cellsearch.service.travel.optuna_file import DATETIMES, write_optuna_file


@dataclass(frozen=True)
class _Snapshot:
    """What one transaction read of a study."""

    record: StudyRecord
    rows: bulk_write.StudyRows
    trials: list[FrozenTrial]
    models: list[ArtifactRecord]
    dataset: DatasetRecord | None
    content: bytes | None  # the data set's bytes


def archive_name(name: str) -> str:
    """The file name an export of study ``name`` is saved under."""
    return f"{name}{layout.EXTENSION}"


def export_study(*, engine: Engine, store: Any, name: str, target: IO[bytes]) -> layout.Manifest:
    """Write the archive of study ``name`` to ``target`` (a binary file open for writing).

    Raises:
        NotFound: no such study.
        Conflict: a trial of the study is running, or a kept model or the data set is
            damaged in its store.
    """
    status = report_state(engine=engine, name=name).status
    snapshot = _read(engine, name)
    record = snapshot.record
    spec = StudySpec.model_validate(record.spec)
    report = build_report(snapshot.trials, study_context(engine, spec, status)).to_json()
    writer = ArchiveWriter(target)
    writer.add_bytes(layout.STUDY, _study_entry(snapshot).model_dump_json(indent=1).encode())
    writer.add_bytes(layout.REPORT, report.encode())
    with tempfile.TemporaryDirectory(prefix="cellsearch-export-") as folder:
        path = Path(folder) / layout.OPTUNA
        write_optuna_file(path, _listing(snapshot), snapshot.trials)
        writer.add_path(layout.OPTUNA, path)
    if snapshot.dataset is not None and snapshot.content is not None:
        dataset = snapshot.dataset
        name_in = layout.dataset_file(dataset.sha256, dataset.format)
        writer.add_bytes(name_in, snapshot.content, compress=dataset.format == "csv")
    for model in snapshot.models:
        writer.add(layout.model_file(model.id), _checked(stream(store, model.id), model))
    return writer.close(
        format=layout.FORMAT,
        format_version=layout.FORMAT_VERSION,
        cellsearch=cellsearch.__version__,
        optuna=optuna.__version__,
        optuna_datetimes=DATETIMES,
        study=name,
        exported_at=datetime.now(UTC),
    )


def _read(engine: Engine, name: str) -> _Snapshot:
    with session_scope(engine) as session:
        stored = read_stored(session, engine, name)
        running = bulk_read.count_in_marker(stored.trials, [TrialState.RUNNING])
        if running:
            raise Conflict(
                f"study {name!r} has {running} running trial(s): an archive holds finished "
                "work. Wait for them, or pause the study (its running trials stop after "
                "their epoch and are requeued), then export it"
            )
        conn = session.connection()
        trials = bulk_read.read_trials(conn, stored.study_id)
        rows = bulk_write.read_study(conn, stored.study_id)
        models = _models(session, stored.record.id)
        dataset, content = _dataset(session, stored.record.dataset_id)
        return _Snapshot(stored.record, rows, trials, models, dataset, content)


def _models(session: Session, record_id: int) -> list[ArtifactRecord]:
    query = select(ArtifactRecord).where(
        ArtifactRecord.study_id == record_id, ArtifactRecord.kind == "model"
    )
    return list(session.scalars(query.order_by(ArtifactRecord.trial_number, ArtifactRecord.id)))


def _dataset(session: Session, dataset_id: str | None) -> tuple[DatasetRecord | None, bytes | None]:
    if dataset_id is None:
        return None, None
    dataset = DatasetRecord.find_or_raise(session, dataset_id)
    content = dataset.content
    if hashlib.sha256(content).hexdigest() != dataset.sha256:
        raise Conflict(f"dataset {dataset_id!r} is corrupted: its checksum does not match")
    return dataset, content


def _listing(snapshot: _Snapshot) -> bulk_write.StudyRows:
    """The study's rows with exactly its exported models listed as its artifacts (the
    entries of models the retention dropped left out)."""
    listed = listed_artifacts(snapshot.rows.system_attrs)
    kept = {
        m.id: listed.get(m.id, f"model-{m.cell_type}-trial-{m.trial_number}.safetensors")
        for m in snapshot.models
    }
    attrs = relisted_artifacts(snapshot.rows.system_attrs, kept)
    return dataclasses.replace(snapshot.rows, system_attrs=attrs)


def _study_entry(snapshot: _Snapshot) -> layout.StudyEntry:
    record, dataset = snapshot.record, snapshot.dataset
    datasets = []
    if dataset is not None:
        datasets.append(
            layout.DatasetEntry(
                id=dataset.id,
                name=dataset.name,
                format=dataset.format,  # type: ignore[arg-type]
                kind=dataset.kind,
                sha256=dataset.sha256,
            )
        )
    models = [
        layout.ModelEntry(
            id=m.id, trial_number=m.trial_number, cell_type=m.cell_type, value=m.value,
            epoch=m.epoch, reevaluation=m.reevaluation, size_bytes=m.size_bytes, sha256=m.sha256,
        )
        for m in snapshot.models
    ]  # fmt: skip
    return layout.StudyEntry(
        name=record.name,
        spec=record.spec,
        status=record.status,  # type: ignore[arg-type]
        n_trials=record.n_trials,
        claimed=record.claimed,
        issued=record.issued,
        reevaluations=record.reevaluations,
        reevaluation_base=record.reevaluation_base,
        created_at=record.created_at,
        created_by=record.created_by,
        datasets=datasets,
        models=models,
    )


def _checked(chunks: Iterator[bytes], model: ArtifactRecord) -> Iterator[bytes]:
    """The model's bytes, checked against its index row once all are read."""
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if size != model.size_bytes or digest.hexdigest() != model.sha256:
        raise Conflict(
            f"the kept model of trial {model.trial_number} is damaged in the artifact store "
            "(its checksum does not match the index)"
        )
