"""Request and response shapes of the REST API."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

import optuna
from pydantic import AfterValidator, BaseModel, Field

from cellsearch.search.record import TrialRecord
from cellsearch.search.report.metric import objective_metric
from cellsearch.service.store.tables import StudyRecord, WorkerRecord
from cellsearch.service.studies.operations import TrialCounts
from cellsearch.service.suites.operations import SuiteStudy, SuiteView

T = TypeVar("T")


def as_utc(value: datetime) -> datetime:
    """``value`` with its offset: a naive time from the service's tables is UTC (SQLite
    drops the offset it was written with)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
"""A timestamp that always carries its offset in JSON, on SQLite as on PostgreSQL."""


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    offset: int
    limit: int


class Counts(BaseModel):
    """Trials by state. ``failed`` are model outcomes (diverged, error) and count toward
    the budget; ``requeued`` were interrupted or stale and were run again."""

    running: int
    waiting: int
    complete: int
    pruned: int
    failed: int
    requeued: int
    reevaluated: int = Field(description="Finished seed re-evaluation runs (own budget).")
    finished: int
    by_cell: dict[str, int] = Field(description="Finished trials per cell type.")

    @classmethod
    def of(cls, counts: TrialCounts) -> Counts:
        return cls(**{**counts.__dict__, "finished": counts.finished})


TrialOut = TrialRecord
"""One trial as the API shows it: the trial record (:mod:`cellsearch.search.record`)."""


def trial_out(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    """The trial record of ``trial`` (times in UTC, offset included)."""
    return TrialRecord.of(trial)


class StudyOut(BaseModel):
    """A study with its progress."""

    name: str
    status: str = Field(
        description="queued (running, but waiting behind an older study), running, paused, "
        "cancelled or completed."
    )
    task: str
    cell_types: list[str]
    objective: str | None = Field(
        default=None, description="What the study optimises, in words: 'validation MSE'."
    )
    n_trials: int
    n_reevaluations: int = Field(
        description="Seed re-evaluation runs added once the search finished (0 before)."
    )
    counts: Counts
    created_at: UtcDatetime
    updated_at: UtcDatetime
    created_by: str | None = Field(
        default=None, description="Name of the API key that created it (None: an open API)."
    )
    note: str | None = Field(
        default=None,
        description="What holds the study up when its status alone does not say, e.g. "
        "'waiting for a worker: none is alive'; null otherwise.",
    )

    @classmethod
    def of(
        cls,
        record: StudyRecord,
        counts: TrialCounts,
        status: str | None = None,
        note: str | None = None,
        objective: str | None = None,
    ) -> StudyOut:
        """``objective``: the objective in words where the spec alone does not tell it
        (:func:`~cellsearch.service.studies.labels.objective_labels`)."""
        spec = record.study_spec()
        return cls(
            name=record.name,
            note=note,
            status=status or record.status,
            task=spec.task.kind,
            cell_types=spec.cell_types,
            objective=objective or objective_metric(spec).label,
            n_trials=record.n_trials,
            n_reevaluations=record.reevaluations,
            counts=Counts.of(counts),
            created_at=record.created_at,
            updated_at=record.updated_at,
            created_by=record.created_by,
        )


class StudyDetail(StudyOut):
    """A study with its spec and best trial."""

    spec: dict[str, Any]
    best_trial: TrialOut | None
    artifact_bytes: int = Field(
        default=0,
        description="Bytes of the study's kept models and checkpoints in the artifact store "
        "(bounded by the server's max_artifact_bytes).",
    )


class CellOptionOut(BaseModel):
    name: str
    description: str
    default: float | None
    low: float
    high: float
    log: bool


class CellOut(BaseModel):
    """A searchable recurrent cell."""

    name: str
    title: str
    description: str
    reference: str
    state_layout: list[str]
    fused: bool
    options: list[CellOptionOut]
    param_formula: str = Field(
        description="Exact parameter count of one layer (I inputs, H hidden units)."
    )
    param_count_example: int = Field(
        description="Parameters of one layer with input size 1 and hidden size 64."
    )


class TaskOut(BaseModel):
    """A task kind (the task registry's entry)."""

    kind: str
    title: str
    description: str
    baseline: str
    parameters: dict[str, Any] = Field(description="JSON Schema of the task's part of a spec.")


class WorkerOut(BaseModel):
    """A worker process seen through its heartbeat."""

    worker_id: str
    host: str
    pid: int
    device: str
    torch_threads: int | None
    study_name: str | None
    trial_number: int | None
    started_at: UtcDatetime
    last_heartbeat: UtcDatetime
    seconds_since_heartbeat: float
    live: bool = Field(description="Its last heartbeat is within the grace period.")

    @classmethod
    def of(cls, record: WorkerRecord | Any, now: datetime, *, grace_period: float) -> WorkerOut:
        """From a registry row (an ORM record or a Core row with its columns)."""
        last = record.last_heartbeat
        if last.tzinfo is None:
            last = last.replace(tzinfo=now.tzinfo)
        since = (now - last).total_seconds()
        return cls(
            **{k: getattr(record, k) for k in cls.model_fields if hasattr(record, k)},
            seconds_since_heartbeat=since,
            live=since < grace_period,
        )


class DatasetOut(BaseModel):
    """An uploaded data set (without its content)."""

    id: str
    name: str
    format: str
    kind: str
    sha256: str
    size_bytes: int
    n_sequences: int
    max_length: int
    n_features: int
    n_classes: int | None
    created_at: UtcDatetime
    created_by: str | None = Field(
        default=None, description="Name of the API key that uploaded it (None: an open API)."
    )


class Health(BaseModel):
    """Liveness or readiness."""

    status: str
    detail: str | None = None
    artifact_store: str | None = Field(
        default=None, description="Where trained models are kept (never its credentials)."
    )


class SuiteStudyOut(BaseModel):
    """One task of a suite and the progress of its study (status ``missing``: deleted)."""

    task: str
    study: str
    kind: str
    status: str
    n_trials: int
    counts: Counts

    @classmethod
    def of(cls, study: SuiteStudy) -> SuiteStudyOut:
        return cls(
            task=study.task,
            study=study.name,
            kind=study.kind,
            status=study.status,
            n_trials=study.record.n_trials if study.record else 0,
            counts=Counts.of(study.counts),
        )


class SuiteOut(BaseModel):
    """A suite with the progress of its studies."""

    name: str
    description: str
    status: str = Field(description="running, paused, completed, cancelled (or empty).")
    cell_types: list[str]
    n_tasks: int
    studies_by_status: dict[str, int]
    finished: int = Field(description="Finished trials over all its studies.")
    n_trials: int = Field(description="Planned trials over all its studies.")
    created_at: UtcDatetime
    created_by: str | None = Field(
        default=None, description="Name of the API key that created it (None: an open API)."
    )

    @classmethod
    def of(cls, view: SuiteView) -> SuiteOut:
        record = view.record
        cells = record.spec["study"]["space"]["cell_type"]
        return cls(
            name=record.name,
            description=record.description,
            status=view.status,
            cell_types=cells if isinstance(cells, list) else [cells],
            n_tasks=len(view.studies),
            studies_by_status=dict(Counter(s.status for s in view.studies)),
            finished=sum(s.counts.finished for s in view.studies),
            n_trials=sum(s.record.n_trials for s in view.studies if s.record),
            created_at=record.created_at,
            created_by=record.created_by,
        )


class SuiteDetail(SuiteOut):
    """A suite with its spec and one entry per task."""

    spec: dict[str, Any]
    studies: list[SuiteStudyOut]

    @classmethod
    def of_view(cls, view: SuiteView) -> SuiteDetail:
        return cls(
            **SuiteOut.of(view).model_dump(),
            spec=view.record.spec,
            studies=[SuiteStudyOut.of(s) for s in view.studies],
        )
