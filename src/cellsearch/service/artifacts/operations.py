"""What the API does with artifacts: a study's models and bytes, downloads, the sweep.

Downloads are served from the store as a stream of chunks (in the API's thread pool, so
the event loop goes on), never loaded whole. A model that cannot be served is a 404 that
says why: no such trial, a trial that did not complete, a completed trial whose model was
not among the best kept, a cell type without a kept model.

Deleting a study detaches its artifact rows (``study_id`` set NULL) in the transaction
that deletes the study record; :func:`sweep` then removes the files of detached rows and
the rows. The API and every worker sweep at start-up, so a crash between the two leaves
nothing behind for long.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.study import StudyDirection
from sqlalchemy import Engine, Select, Update, delete, func, select, update

from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.service.artifacts.index import SqlArtifactIndex
from cellsearch.service.artifacts.store import artifact_store
from cellsearch.service.errors import NotFound
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import connection_scope, session_scope
from cellsearch.service.store.tables import ArtifactRecord, StudyRecord

log = logging.getLogger(__name__)
CHUNK = 1 << 20


@functools.cache
def _store(location: tuple[str | None, str | None, str]) -> Any:
    artifact_dir, artifact_url, database_url = location
    settings = Settings(
        database_url=database_url, artifact_dir=artifact_dir, artifact_url=artifact_url
    )
    return artifact_store(settings, database_url)


def store_for(settings: Settings) -> Any:
    """The process's artifact store of ``settings`` (one per location)."""
    return _store((settings.artifact_dir, settings.artifact_url, settings.database_url))


@dataclass(frozen=True)
class ModelDownload:
    """A kept model, ready to stream."""

    entry: ArtifactEntry

    @property
    def filename(self) -> str:
        """The name a download is saved under."""
        entry = self.entry
        return f"{entry.study_name}-{entry.cell_type}-trial-{entry.trial_number}.safetensors"


def kept_models(*, engine: Engine, name: str) -> list[ArtifactEntry]:
    """The kept models of study ``name``, by cell type and value.

    Raises:
        NotFound: no such study.
    """
    _record(engine, name)
    return SqlArtifactIndex(engine).models(name)


def trial_model(*, engine: Engine, name: str, number: int) -> ModelDownload:
    """The kept model of trial ``number``.

    Raises:
        NotFound: no such study or trial, or no model kept for it (the message says why).
    """
    _record(engine, name)
    for entry in SqlArtifactIndex(engine).models(name):
        if entry.trial_number == number:
            return ModelDownload(entry)
    with connection_scope(engine) as conn:
        study_id = bulk_read.find_study_id(conn, name)
        found = None if study_id is None else bulk_read.find_trial(conn, study_id, number)
    if found is None:
        raise NotFound(f"study {name!r} has no trial {number}")
    state = found.state.name.lower()
    if state != "complete":
        raise NotFound(f"trial {number} of {name!r} is {state}: only a completed trial has a model")
    raise NotFound(
        f"trial {number} of {name!r} has no kept model: only the best completed trials of each "
        "cell type keep theirs (CELLSEARCH_KEEP_TOP_K), and every re-evaluation run"
    )


def best_model(*, engine: Engine, name: str, cell_type: str) -> ModelDownload:
    """The kept model of the best completed search trial of ``cell_type``.

    Raises:
        NotFound: no such study, a cell type the study does not search, or none kept yet.
    """
    record = _record(engine, name)
    cells = record.study_spec().cell_types
    if cell_type not in cells:
        raise NotFound(f"study {name!r} searches {', '.join(cells)}, not {cell_type!r}")
    best = _best_of_cells(record, SqlArtifactIndex(engine).models(name)).get(cell_type)
    if best is None:
        raise NotFound(f"no model of {cell_type} is kept in {name!r} yet: none has completed")
    return ModelDownload(best)


def best_models(*, engine: Engine, name: str) -> list[ArtifactEntry]:
    """The model :func:`best_model` serves for each cell type that has one, in the study's
    order of cell types (none kept: an empty list).

    Raises:
        NotFound: no such study.
    """
    record = _record(engine, name)
    best = _best_of_cells(record, SqlArtifactIndex(engine).models(name))
    return [best[cell] for cell in record.study_spec().cell_types if cell in best]


def _best_of_cells(record: StudyRecord, models: list[ArtifactEntry]) -> dict[str, ArtifactEntry]:
    """The kept model of each cell type's best completed search trial (ties: the first)."""
    direction = record.study_spec().objective.direction
    sign = -1.0 if direction == StudyDirection.MAXIMIZE.name.lower() else 1.0
    best: dict[str, ArtifactEntry] = {}
    ranked = sorted(
        (m for m in models if m.cell_type and not m.reevaluation and m.value is not None),
        key=lambda m: (sign * (m.value or 0.0), m.trial_number),
    )
    for model in ranked:
        best.setdefault(model.cell_type or "", model)
    return best


def stream(store: Any, artifact_id: str) -> Iterator[bytes]:
    """The bytes of an artifact, chunk by chunk.

    Raises:
        NotFound: the file is missing from the store.
    """
    try:
        reader = store.open_reader(artifact_id)
    except ArtifactNotFound:
        raise NotFound(f"artifact {artifact_id} is missing from the artifact store") from None

    def chunks() -> Iterator[bytes]:
        with contextlib.closing(reader):
            while chunk := reader.read(CHUNK):
                yield chunk

    return chunks()


def study_bytes(*, engine: Engine, names: list[str]) -> dict[str, int]:
    """Bytes of the artifacts of each study, by name (0 for none)."""
    if not names:
        return {}
    query = (
        select(StudyRecord.name, func.coalesce(func.sum(ArtifactRecord.size_bytes), 0))
        .join(ArtifactRecord, ArtifactRecord.study_id == StudyRecord.id)
        .where(StudyRecord.name.in_(names))
        .group_by(StudyRecord.name)
    )
    with connection_scope(engine) as conn:
        found = {name: int(total) for name, total in conn.execute(query)}
    return {name: found.get(name, 0) for name in names}


def detach(studies: Select[int]) -> Update:
    """The statement that detaches the artifacts of ``studies`` (a query of study record
    ids) from them: run it in the transaction that deletes those studies."""
    return (
        update(ArtifactRecord)
        .where(ArtifactRecord.study_id.in_(studies.scalar_subquery()))
        .values(study_id=None)
    )


def sweep(*, engine: Engine, store: Any) -> int:
    """Remove the artifacts whose study is gone (files first, then rows); return how many."""
    with connection_scope(engine) as conn:
        orphans = list(
            conn.scalars(select(ArtifactRecord.id).where(ArtifactRecord.study_id.is_(None)))
        )
    for artifact_id in orphans:
        with contextlib.suppress(ArtifactNotFound):
            store.remove(artifact_id)
        with connection_scope(engine) as conn:
            conn.execute(delete(ArtifactRecord).where(ArtifactRecord.id == artifact_id))
    if orphans:
        log.info("removed %d artifacts of deleted studies", len(orphans))
    return len(orphans)


def _record(engine: Engine, name: str) -> StudyRecord:
    with session_scope(engine) as session:
        return StudyRecord.find_or_raise(session, name)
