"""The service's record of artifacts (``cellsearch_artifacts``): the worker's index.

Every row names its study by the study record's id, looked up by name when it is written
and read, so that a study deleted and made again under its name never sees the artifacts
of the one before (those rows lost their study when it was deleted; see
:mod:`.operations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, ScalarSelect, Select, delete, func, insert, select

from cellsearch.search.trial.keeping import ArtifactEntry, Kind
from cellsearch.service.store.db import connection_scope
from cellsearch.service.store.tables import ArtifactRecord, StudyRecord

_COLUMNS = (
    ArtifactRecord.id,
    ArtifactRecord.study_name,
    ArtifactRecord.trial_number,
    ArtifactRecord.kind,
    ArtifactRecord.size_bytes,
    ArtifactRecord.sha256,
    ArtifactRecord.cell_type,
    ArtifactRecord.value,
    ArtifactRecord.epoch,
    ArtifactRecord.reevaluation,
)


def _study_id(name: str) -> ScalarSelect[int]:
    return select(StudyRecord.id).where(StudyRecord.name == name).scalar_subquery()


def entry_of(row: Row[Any]) -> ArtifactEntry:
    """An index row (the columns of :data:`_COLUMNS`, named as the entry's fields)."""
    return ArtifactEntry(**row._mapping)


class SqlArtifactIndex:
    """:class:`~cellsearch.search.trial.keeping.ArtifactIndex` over the service's table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, entry: ArtifactEntry) -> None:
        values = {column.key: getattr(entry, column.key) for column in _COLUMNS}
        with connection_scope(self.engine) as conn:
            conn.execute(
                insert(ArtifactRecord).values(**values, study_id=_study_id(entry.study_name))
            )

    def remove(self, artifact_id: str) -> None:
        with connection_scope(self.engine) as conn:
            conn.execute(delete(ArtifactRecord).where(ArtifactRecord.id == artifact_id))

    def of_trials(self, study_name: str, numbers: Sequence[int], kind: Kind) -> list[ArtifactEntry]:
        if not numbers:
            return []
        query = self._of_study(study_name).where(
            ArtifactRecord.kind == kind, ArtifactRecord.trial_number.in_(list(numbers))
        )
        return self._entries(query)

    def models(self, study_name: str) -> list[ArtifactEntry]:
        return self._entries(self._of_study(study_name).where(ArtifactRecord.kind == "model"))

    def study_bytes(self, study_name: str) -> int:
        query = select(func.coalesce(func.sum(ArtifactRecord.size_bytes), 0)).where(
            ArtifactRecord.study_id == _study_id(study_name)
        )
        with connection_scope(self.engine) as conn:
            return int(conn.scalar(query) or 0)

    @staticmethod
    def _of_study(study_name: str) -> Select[*tuple[Any, ...]]:
        return select(*_COLUMNS).where(ArtifactRecord.study_id == _study_id(study_name))

    def _entries(self, query: Select[*tuple[Any, ...]]) -> list[ArtifactEntry]:
        with connection_scope(self.engine) as conn:
            rows = conn.execute(query.order_by(ArtifactRecord.created_at))
            return [entry_of(row) for row in rows]
