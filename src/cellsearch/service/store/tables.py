"""The service's own tables (never Optuna's), migrated by Alembic.

Names are prefixed ``cellsearch_`` so that they cannot collide with Optuna's tables
(``studies``, ``trials``...) in the shared database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from cellsearch.search.study.spec import StudySpec
from cellsearch.service.errors import NotFound

STUDY_STATUSES = ("running", "paused", "cancelled", "completed")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base holding the service's metadata."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


def study_incarnation(record_id: int, created_at: datetime) -> str:
    """Tells a study from an earlier one of the same name (SQLite may reuse the id)."""
    return f"{record_id}@{created_at.isoformat()}"


class StudyRecord(Base):
    """A submitted study: its spec, lifecycle status and budget ledger.

    ``claimed`` counts the budget units in use: trials finished or running. A worker
    increments it atomically before asking Optuna for a trial, and a requeued trial
    gives its unit back, so ``claimed`` never exceeds ``n_trials`` (plus
    ``reevaluations`` once a re-evaluating study's search is done).
    """

    __tablename__ = "cellsearch_studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="running")
    n_trials: Mapped[int] = mapped_column(Integer)
    claimed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )
    last_claim_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # bumped by every reclaim; a release made with an older value is void (see ledger.py)
    reclaims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # every claim ever made (never decremented): re-evaluation claims' tickets derive from it
    issued: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # re-evaluation units, added once the search is done (0 before, or without re-evaluation)
    reevaluations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # ``issued`` when the re-evaluation began; NULL while the search runs
    reevaluation_base: Mapped[int | None] = mapped_column(Integer)
    # the deal counter: deals from here on were never handed out and no trial holds one;
    # NULL for a study made before it was kept (cellsearch.search.worker.deals)
    dealt: Mapped[int | None] = mapped_column(Integer)
    # the suite that made the study (service/suites/operations.py); None for a study submitted alone
    suite_id: Mapped[int | None] = mapped_column(
        ForeignKey("cellsearch_suites.id", ondelete="SET NULL"), index=True
    )
    created_by: Mapped[str | None] = mapped_column(String(64))  # the API key's name
    # the uploaded data set the task reads: the database refuses to delete it meanwhile
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("cellsearch_datasets.id", ondelete="RESTRICT"), index=True
    )

    @classmethod
    def new(
        cls, spec: StudySpec, *, created_by: str | None, suite_id: int | None = None
    ) -> StudyRecord:
        """The record of a study about to be made from ``spec``: running, nothing claimed."""
        return cls(
            name=spec.name,
            spec=spec.to_json(),
            status="running",
            n_trials=spec.budget.n_trials,
            claimed=0,
            dealt=0,
            suite_id=suite_id,
            created_by=created_by,
            dataset_id=getattr(spec.task, "dataset_id", None),
        )

    def study_spec(self) -> StudySpec:
        """The validated spec (the ``spec`` column holds it as submitted, in JSON)."""
        return StudySpec.model_validate(self.spec)

    @property
    def incarnation(self) -> str:
        """Tells this study from an earlier one of the same name (see
        :func:`study_incarnation`)."""
        return study_incarnation(self.id, self.created_at)

    @classmethod
    def find(cls, session: Session, name: str) -> StudyRecord | None:
        """The study called ``name``, or ``None``."""
        return session.scalars(select(cls).where(cls.name == name)).one_or_none()

    @classmethod
    def find_or_raise(cls, session: Session, name: str, *, for_update: bool = False) -> StudyRecord:
        """The study called ``name``.

        Raises:
            NotFound: no study has that name.
        """
        query = select(cls).where(cls.name == name)
        if for_update:
            query = query.with_for_update()
        record = session.scalars(query).one_or_none()
        if record is None:
            raise NotFound(f"study {name!r} not found")
        return record


class WorkerRecord(Base):
    """A worker process seen through its heartbeats."""

    __tablename__ = "cellsearch_workers"

    worker_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(32))
    machine: Mapped[str | None] = mapped_column(String(64))  # kernel boot id: same host
    torch_threads: Mapped[int | None] = mapped_column(Integer)
    study_name: Mapped[str | None] = mapped_column(String(64))
    trial_number: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_heartbeat: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetRecord(Base):
    """An uploaded data set, stored in the database so that every worker can read it."""

    __tablename__ = "cellsearch_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    format: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    n_sequences: Mapped[int] = mapped_column(Integer)
    max_length: Mapped[int] = mapped_column(Integer)
    n_features: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))  # the API key's name

    @classmethod
    def find_or_raise(cls, session: Session, dataset_id: str) -> DatasetRecord:
        """The data set with ``dataset_id``.

        Raises:
            NotFound: no data set has that id.
        """
        record = session.get(cls, dataset_id)
        if record is None:
            raise NotFound(f"dataset {dataset_id!r} not found")
        return record


class SuiteRecord(Base):
    """A suite: one study per task from one template (its studies link back by ``suite_id``).

    ``studies`` lists the names of the studies it made, in the order of its tasks; a
    study deleted on its own stays listed (and shows as missing).
    """

    __tablename__ = "cellsearch_suites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    studies: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))  # the API key's name

    @classmethod
    def find(cls, session: Session, name: str) -> SuiteRecord | None:
        """The suite called ``name``, or ``None``."""
        return session.scalars(select(cls).where(cls.name == name)).one_or_none()

    @classmethod
    def find_or_raise(cls, session: Session, name: str) -> SuiteRecord:
        """The suite called ``name``.

        Raises:
            NotFound: no suite has that name.
        """
        record = cls.find(session, name)
        if record is None:
            raise NotFound(f"suite {name!r} not found")
        return record


class ArtifactRecord(Base):
    """An artifact in the store: a checkpoint of a running trial or a kept model.

    ``study_id`` is set NULL when its study is deleted (in the same transaction), and such
    artifacts are removed from the store and from here by :func:`cellsearch.service.
    artifacts.operations.sweep`, so a crash between the two leaves nothing behind.
    """

    __tablename__ = "cellsearch_artifacts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # Optuna's artifact id
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("cellsearch_studies.id", ondelete="SET NULL"), index=True
    )
    study_name: Mapped[str] = mapped_column(String(64))
    trial_number: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # checkpoint | model
    cell_type: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)  # a model's objective value
    epoch: Mapped[int | None] = mapped_column(Integer)  # a checkpoint's epochs done
    reevaluation: Mapped[bool] = mapped_column(Boolean, default=False)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKeyRecord(Base):
    """An API key: its name, role and SHA-256 digest (the key itself is never stored)."""

    __tablename__ = "cellsearch_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in listings
    digest: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SecretRecord(Base):
    """A server secret generated on first use (the session cookies' signing key)."""

    __tablename__ = "cellsearch_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
