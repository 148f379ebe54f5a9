"""A study archive into a study on this server, on either database: all of it, or nothing.

Every check runs before anything is stored: the archive itself (:func:`~.archive.unpack`),
its ``study.json`` and spec (this server's limits included: 422 naming the field), its
Optuna storage (:func:`~.optuna_file.read_optuna_file`) and how it agrees with the record
(the objective's direction, no running trial, the kept models' trials), the data set
(parsed as an upload is) and each model file's header. Then the model files are written to
the artifact store under new ids, and the rest in one transaction: the data set (unless
this server holds the same bytes already: then the study reads that one), the service's
record, the Optuna study with every trial (numbers, attributes and learning curves as they
were: :mod:`cellsearch.search.optuna_adapter.bulk_write`) and the models' index rows. A
failure removes the files written; the transaction leaves nothing.

The imported study belongs to the key that imported it. A study that was running or
paused arrives paused (resume it to go on here); the budget ledger counts its finished
trials. A warm-started study keeps its seeds (they are in its Optuna study), so the
studies it was seeded from need not exist here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import struct
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cellsearch.search.errors import FieldError, SpecError
from cellsearch.search.optuna_adapter import (
    bulk_read,
    bulk_write,
    listed_artifacts,
    relisted_artifacts,
)
from cellsearch.search.record import Attr, cell_of, is_counted
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.artifacts.store import new_artifact_id
from cellsearch.service.datasets.operations import upload_limits
from cellsearch.service.datasets.parsing import summarize_in_child
from cellsearch.service.errors import Conflict, InvalidArchive
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import connection_scope, session_scope
from cellsearch.service.store.tables import ArtifactRecord, DatasetRecord, StudyRecord
from cellsearch.service.studies.spec_checks import RESERVED_STUDY_NAMES
from cellsearch.service.travel import layout
from cellsearch.service.travel.archive import Unpacked, unpack
from cellsearch.service.travel.optuna_file import read_optuna_file

ARRIVES_AS = {"running": "paused", "paused": "paused", "completed": "completed",
              "cancelled": "cancelled"}  # fmt: skip
"""The status an imported study gets for the status it had."""


@dataclass(frozen=True)
class Imported:
    """What an import made: the study, and what a person should know of it."""

    name: str
    status: str
    trials: int
    models: int
    dataset_id: str | None
    notes: list[str]


@dataclass(frozen=True)
class _Dataset:
    """The archive's data set, parsed: what the index records of its shape."""

    entry: layout.DatasetEntry
    content: bytes
    n_sequences: int
    max_length: int
    n_features: int
    n_classes: int | None


@dataclass(frozen=True)
class _Plan:
    """An archive checked whole, ready to store."""

    entry: layout.StudyEntry
    spec: StudySpec
    rows: bulk_write.StudyRows
    trials: list[FrozenTrial]
    dataset: _Dataset | None
    unpacked: Unpacked


def import_study(
    *,
    engine: Engine,
    store: Any,
    settings: Settings,
    source: IO[bytes],
    name: str | None = None,
    created_by: str | None = None,
) -> Imported:
    """Recreate the study of the archive in ``source`` (a seekable binary file), named
    ``name`` (None: as it was), owned by ``created_by``.

    Raises:
        InvalidArchive: the archive is damaged, tampered with, unsafe or past the limits.
        SpecError: its spec (or ``name``) breaks a rule or one of this server's limits.
        DatasetError: its data set is not one this server accepts.
        Conflict: a study has the name (give another with ``name``).
    """
    with tempfile.TemporaryDirectory(prefix="cellsearch-import-") as folder:
        unpacked = unpack(source, Path(folder), settings)
        entry = _study_entry(unpacked)
        spec = _spec(entry, name, settings)
        _check_free(engine, spec.name, renamed=name is not None)
        plan = _plan(unpacked, entry, spec, settings)
        return _store(engine, store, plan, created_by)


def _study_entry(unpacked: Unpacked) -> layout.StudyEntry:
    try:
        entry = layout.StudyEntry.model_validate_json(unpacked.path(layout.STUDY).read_bytes())
        json.loads(unpacked.path(layout.REPORT).read_bytes())
    except (ValidationError, ValueError) as exc:
        raise InvalidArchive(f"{layout.STUDY} or {layout.REPORT} is not valid: {exc}") from None
    if entry.name != unpacked.manifest.study:
        raise InvalidArchive(f"{layout.STUDY} and the {layout.MANIFEST} name other studies")
    return entry


def _spec(entry: layout.StudyEntry, name: str | None, settings: Settings) -> StudySpec:
    data = dict(entry.spec)
    if name is not None:
        data["name"] = name
    spec = parse_spec(data, settings.limits())
    if spec.name in RESERVED_STUDY_NAMES:
        raise SpecError([FieldError(("name",), f"'{spec.name}' is reserved: choose another",
                                    "reserved_name")])  # fmt: skip
    if spec.budget.n_trials != entry.n_trials:
        raise InvalidArchive(f"{layout.STUDY}: its n_trials and its spec's disagree")
    return spec


def _check_free(engine: Engine, name: str, *, renamed: bool) -> None:
    """Raises Conflict when a study (ours or a bare Optuna one) has ``name``."""
    with connection_scope(engine) as conn:
        taken = conn.scalar(select(StudyRecord.id).where(StudyRecord.name == name)) is not None
        taken = taken or bulk_read.find_study_id(conn, name) is not None
    if taken:
        hint = "" if renamed else "; import it under another name (--name NEW, or name=)"
        raise Conflict(f"a study named {name!r} already exists{hint}")


def _plan(
    unpacked: Unpacked, entry: layout.StudyEntry, spec: StudySpec, settings: Settings
) -> _Plan:
    manifest = unpacked.manifest
    rows, trials = read_optuna_file(unpacked.path(layout.OPTUNA), entry.name,
                                    manifest.optuna_datetimes)  # fmt: skip
    if rows.directions != (StudyDirection[spec.objective.direction.upper()],):
        raise InvalidArchive(f"{layout.OPTUNA}: the study's direction is not its spec's")
    if any(t.state == TrialState.RUNNING for t in trials):
        raise InvalidArchive(f"{layout.OPTUNA} holds running trials: an archive holds none")
    if [t.number for t in trials] != list(range(len(trials))):
        raise InvalidArchive(f"{layout.OPTUNA}: the trials are not numbered 0..n-1")
    _check_models(unpacked, entry, trials)
    dataset = _dataset(unpacked, entry, spec, settings)
    rows = dataclasses.replace(rows, name=spec.name)
    return _Plan(entry, spec, rows, trials, dataset, unpacked)


def _check_models(unpacked: Unpacked, entry: layout.StudyEntry, trials: list[FrozenTrial]) -> None:
    """Each kept model names a completed trial of its cell type, and its file (listed,
    checksummed) starts with a safetensors header; no model file is unlisted."""
    files = unpacked.manifest.files
    listed = {layout.model_file(m.id) for m in entry.models}
    if set(unpacked.names("models/")) != listed or len(listed) != len(entry.models):
        raise InvalidArchive(f"the model files and the models {layout.STUDY} lists disagree")
    for model in entry.models:
        name = layout.model_file(model.id)
        if (files[name].sha256, files[name].size) != (model.sha256, model.size_bytes):
            raise InvalidArchive(f"{name}: not the file {layout.STUDY} describes")
        trial = trials[model.trial_number] if model.trial_number < len(trials) else None
        if trial is None or trial.state != TrialState.COMPLETE or cell_of(trial) != model.cell_type:
            raise InvalidArchive(f"{name}: trial {model.trial_number} has no such model")
        _check_safetensors(unpacked.path(name))


def _check_safetensors(path: Path) -> None:
    """A safetensors file starts with the length of its JSON header, then the header."""
    with path.open("rb") as file:
        head = file.read(8)
        size = path.stat().st_size
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else size
        try:
            if length + 8 > size or not isinstance(json.loads(file.read(length)), dict):
                raise ValueError
        except ValueError:
            raise InvalidArchive(f"{path.name}: not a safetensors model file") from None


def _dataset(
    unpacked: Unpacked, entry: layout.StudyEntry, spec: StudySpec, settings: Settings
) -> _Dataset | None:
    """The data set the task reads, parsed as an upload is (None when it reads none)."""
    wanted = getattr(spec.task, "dataset_id", None)
    files = unpacked.names("datasets/")
    if wanted is None:
        if entry.datasets or files:
            raise InvalidArchive("the archive holds a data set its study does not read")
        return None
    found = entry.datasets[0] if entry.datasets else None
    if found is None or found.id != wanted:
        raise InvalidArchive(f"the study reads data set {wanted!r}, which the archive lacks")
    name = layout.dataset_file(found.sha256, found.format)
    if files != [name]:
        raise InvalidArchive(f"the archive's data set files are not {name}")
    content = unpacked.path(name).read_bytes()
    if hashlib.sha256(content).hexdigest() != found.sha256:
        raise InvalidArchive(f"{name}: its bytes are not the data set {layout.STUDY} names")
    if len(content) > settings.max_upload_bytes:
        raise InvalidArchive(f"{name}: {len(content)} bytes, past this server's "
                             f"max_upload_bytes ({settings.max_upload_bytes})")  # fmt: skip
    limits = upload_limits(settings.limits(), settings.max_upload_bytes)
    summary = summarize_in_child(content, found.format, kind=found.kind,
                                 max_bytes=settings.max_upload_bytes, limits=limits)  # fmt: skip
    if summary["kind"] != found.kind:
        raise InvalidArchive(f"{name}: its content is not a {found.kind} data set")
    number = {k: v for k, v in summary.items() if isinstance(v, int)}
    return _Dataset(found, content, number["n_sequences"], number["max_length"],
                    number["n_features"], number.get("n_classes"))  # fmt: skip


def _store(engine: Engine, store: Any, plan: _Plan, created_by: str | None) -> Imported:
    models = plan.entry.models
    new_ids = {m.id: new_artifact_id() for m in models}
    written: list[str] = []
    try:
        for model in models:
            with plan.unpacked.path(layout.model_file(model.id)).open("rb") as file:
                store.write(new_ids[model.id], file)
            written.append(new_ids[model.id])
        with session_scope(engine) as session:
            dataset_id, notes = _dataset_row(session, plan, created_by)
            record = _record(plan, dataset_id, created_by)
            session.add(record)
            session.flush()
            _optuna_rows(session, plan, new_ids)
            for model in models:
                session.add(_artifact_row(model, new_ids[model.id], record))
    except IntegrityError:
        _remove(store, written)
        raise Conflict(f"a study named {plan.spec.name!r} was made meanwhile") from None
    except BaseException:
        _remove(store, written)
        raise
    status = record.status
    if status != plan.entry.status:
        notes.append(f"it was {plan.entry.status} where it was exported; it is {status} "
                     "here: resume it to go on")  # fmt: skip
    return Imported(record.name, status, len(plan.trials), len(models), dataset_id, notes)


def _dataset_row(
    session: Session, plan: _Plan, created_by: str | None
) -> tuple[str | None, list[str]]:
    """The id of the data set the study reads here: one with the same bytes, or the
    archive's, added (under its id and name when they are free)."""
    if plan.dataset is None:
        return None, []
    dataset = plan.dataset
    entry = dataset.entry
    same = select(DatasetRecord.id, DatasetRecord.name).where(
        DatasetRecord.sha256 == entry.sha256,
        DatasetRecord.format == entry.format,
        DatasetRecord.kind == entry.kind,
    )
    found = session.execute(same.order_by(DatasetRecord.created_at)).first()
    if found is not None:
        return found.id, [f"its data set is {found.name!r} ({found.id}), already here"]
    dataset_id = entry.id if session.get(DatasetRecord, entry.id) is None else uuid.uuid4().hex
    name = entry.name
    taken = select(DatasetRecord.id).where(DatasetRecord.name == name)
    if session.scalar(taken) is not None:
        name = f"{entry.name[:100]}-{entry.sha256[:12]}"
    session.add(
        DatasetRecord(
            id=dataset_id, name=name, format=entry.format, kind=entry.kind,
            sha256=entry.sha256, size_bytes=len(dataset.content), content=dataset.content,
            n_sequences=dataset.n_sequences, max_length=dataset.max_length,
            n_features=dataset.n_features, n_classes=dataset.n_classes, created_by=created_by,
        )
    )  # fmt: skip
    session.flush()
    return dataset_id, [f"its data set was added as {name!r} ({dataset_id})"]


def _record(plan: _Plan, dataset_id: str | None, created_by: str | None) -> StudyRecord:
    data = plan.spec.to_json()
    if dataset_id is not None:
        data["task"]["dataset_id"] = dataset_id
    spec = StudySpec.model_validate(data)
    counted = sum(is_counted(t) for t in plan.trials)
    entry = plan.entry
    record = StudyRecord.new(spec, created_by=created_by)
    record.status = ARRIVES_AS[entry.status]
    record.claimed = counted
    record.issued = max(entry.issued, counted)
    record.reevaluations = entry.reevaluations
    record.reevaluation_base = entry.reevaluation_base
    record.dealt = _dealt(plan.trials)
    return record


def _dealt(trials: list[FrozenTrial]) -> int | None:
    """The ledger's deal counter for the trials brought in: past every deal they hold (a
    deal in between that none holds was lost, and is found by reading the trials); no
    counter (None) when a deal is not a whole number."""
    deals = [t.user_attrs[Attr.DEAL] for t in trials if Attr.DEAL in t.user_attrs]
    if not all(type(deal) is int for deal in deals):
        return None
    return max(deals, default=-1) + 1


def _optuna_rows(session: Session, plan: _Plan, new_ids: dict[str, str]) -> None:
    """The Optuna study and its trials, its artifact list naming the models' new ids."""
    listed = listed_artifacts(plan.rows.system_attrs)
    relisted = {
        new_ids[m.id]: listed.get(m.id, f"model-{m.cell_type}-trial-{m.trial_number}.safetensors")
        for m in plan.entry.models
    }
    attrs = relisted_artifacts(plan.rows.system_attrs, relisted)
    conn = session.connection()
    study_id = bulk_write.insert_study(conn, dataclasses.replace(plan.rows, system_attrs=attrs))
    bulk_write.insert_trials(conn, study_id, plan.trials)


def _artifact_row(
    model: layout.ModelEntry, artifact_id: str, record: StudyRecord
) -> ArtifactRecord:
    return ArtifactRecord(
        id=artifact_id, study_id=record.id, study_name=record.name,
        trial_number=model.trial_number, kind="model", cell_type=model.cell_type,
        value=model.value, epoch=model.epoch, reevaluation=model.reevaluation,
        size_bytes=model.size_bytes, sha256=model.sha256,
    )  # fmt: skip


def _remove(store: Any, artifact_ids: list[str]) -> None:
    for artifact_id in artifact_ids:
        with contextlib.suppress(Exception):
            store.remove(artifact_id)
