"""What the API answers, as typed records: studies, trials, data sets, suites, the catalog.

The server's own response models (``cellsearch.service.api.schemas``) import Optuna and
SQLAlchemy, and the trial record (``cellsearch.search.record``) Optuna, so the client
states the same shapes here, field for field and in the same order, with pydantic alone.
The records are lenient where the report models are strict: a field the server added
after this client was released is ignored (and kept in :attr:`Record.raw`), so that an
older client keeps working against a newer server; a field added after some servers were
released has a default (an older server does not send it); a field this client needs and
the server does not send is an :class:`~cellsearch.client.errors.UnreadableResponse`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from cellsearch.client.errors import UnreadableResponse

FINAL_STATUSES = ("completed", "cancelled")
"""The statuses a study ends in."""


class Record(BaseModel):
    """The base of every record: frozen, unknown fields ignored, the JSON kept."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def parse(cls, data: Any) -> Self:
        """The record of the API's JSON object ``data``.

        Raises:
            UnreadableResponse: ``data`` lacks a field this client needs, or has the
                wrong type.
        """
        try:
            record = cls.model_validate(data)
        except ValidationError as exc:
            raise UnreadableResponse(
                f"the API's answer is not a {cls.__name__} this client can read: {exc}"
            ) from None
        record._raw = data
        return record

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object as the API sent it (with fields this client does not know)."""
        return self._raw if self._raw is not None else self.model_dump(mode="json")


class Trial(Record):
    """One trial (``GET /studies/{name}/trials``): the trial record the workers write.

    ``state`` is Optuna's, in lower case (running, waiting, complete, pruned, fail);
    ``value`` the objective; ``learning_curve`` the objective per epoch (0-based);
    ``failure_kind`` says why a ``fail`` trial failed (diverged, error; interrupted,
    stale and setup were requeued).
    """

    number: int
    state: str
    value: float | None
    cell_type: str | None
    params: dict[str, Any]
    started_at: datetime | None = None
    completed_at: datetime | None = None
    learning_curve: dict[int, float | None] = {}
    hidden_size: int | None = None
    num_layers: int | None = None
    cell_options: dict[str, float] | None = None
    param_count: int | None = None
    device: str | None = None
    seed: int | None = None
    torch_version: str | None = None
    cellsearch_version: str | None = None
    seconds: float | None = None
    seconds_per_epoch: float | None = None
    epochs_run: int | None = None
    samples_per_second: float | None = None
    best_epoch: int | None = None
    best_val_loss: float | None = None
    test_loss: float | None = None
    test_metric: float | None = None
    test_metric_name: str | None = None
    stop_reason: str | None = None
    precision: str | None = None
    notes: str | None = None
    peak_memory_bytes: int | None = None
    failure_kind: str | None = None
    failure_reason: str | None = None
    retry_of: int | None = None
    retry_reason: str | None = None
    reevaluation_of: int | None = None
    reevaluation_job: int | None = None
    reevaluation_seed: int | None = None
    draw: str | None = None
    resumed_from: int | None = None
    resume_note: str | None = None
    artifact_note: str | None = None
    warm_start: int | None = None


class Counts(Record):
    """Trials by state: ``failed`` are model outcomes (diverged, error) and count toward
    the budget; ``requeued`` were interrupted or stale and ran again; ``finished`` =
    complete + pruned + failed; ``by_cell``: finished trials per cell type."""

    running: int
    waiting: int
    complete: int
    pruned: int
    failed: int
    requeued: int
    reevaluated: int = 0
    finished: int
    by_cell: dict[str, int] = {}


class Study(Record):
    """A study with its progress (``GET /studies``); ``status`` is queued, running,
    paused, cancelled or completed; ``note`` says what holds it up, if anything."""

    name: str
    status: str
    task: str
    cell_types: list[str]
    objective: str | None = None
    n_trials: int
    n_reevaluations: int = 0
    counts: Counts
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    note: str | None = None

    @property
    def ended(self) -> bool:
        """Whether the study is completed or cancelled."""
        return self.status in FINAL_STATUSES


class StudyDetail(Study):
    """A study with its spec and best trial (``GET /studies/{name}``)."""

    spec: dict[str, Any]
    best_trial: Trial | None = None
    artifact_bytes: int = 0

    @property
    def max_epochs(self) -> int:
        """Epochs each trial may train (the spec's budget)."""
        return int(self.spec["budget"]["max_epochs"])


class Validation(Record):
    """What submitting a spec would make (``POST /studies/validate``)."""

    name: str
    name_available: bool
    n_trials: int
    cell_types: list[str]
    trials_per_cell: int
    objective: str
    summary: dict[str, str]
    limits: dict[str, Any]


class CellOption(Record):
    """A searchable option of one cell type (``space: {lstm.forget_bias: ...}``)."""

    name: str
    description: str
    default: float | None
    low: float
    high: float
    log: bool


class Cell(Record):
    """A searchable recurrent cell (``GET /cells``)."""

    name: str
    title: str
    description: str
    reference: str
    state_layout: list[str]
    fused: bool
    options: list[CellOption]
    param_formula: str
    param_count_example: int


class Task(Record):
    """A task kind (``GET /tasks``), with its trivial baseline and the JSON Schema of its
    part of a spec."""

    kind: str
    title: str
    description: str
    baseline: str
    parameters: dict[str, Any]


class Dataset(Record):
    """An uploaded data set, without its content (``GET /datasets``); a spec refers to it
    as ``task: {kind: dataset, dataset_id: ID}``."""

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
    created_at: datetime
    created_by: str | None = None


class SuiteStudy(Record):
    """One task of a suite and its study's progress (status ``missing``: deleted)."""

    task: str
    study: str
    kind: str
    status: str
    n_trials: int
    counts: Counts


class Suite(Record):
    """A suite with the progress of its studies (``GET /suites``)."""

    name: str
    description: str
    status: str
    cell_types: list[str]
    n_tasks: int
    studies_by_status: dict[str, int]
    finished: int
    n_trials: int
    created_at: datetime
    created_by: str | None = None


class SuiteDetail(Suite):
    """A suite with its spec and one entry per task (``GET /suites/{name}``)."""

    spec: dict[str, Any]
    studies: list[SuiteStudy]

    @property
    def ended(self) -> bool:
        """Whether every study of the suite has ended (or was deleted)."""
        return all(s.status in (*FINAL_STATUSES, "missing") for s in self.studies)


class WhoAmI(Record):
    """The request's key (``GET /whoami``): its name (None while the API is open), its
    role, and whether the server requires keys."""

    name: str | None
    role: str
    keys_required: bool
