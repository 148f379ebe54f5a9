"""The trial record: what cellsearch stores on each Optuna trial, and how to read it back.

A trial lives in Optuna's tables: its state and value, the sampled parameters, the
learning curve (one intermediate value per epoch) and cellsearch's user attributes. This
module is the one place that knows the attribute names and their types: writers build
their attribute dicts with :func:`static_attrs`, :func:`result_attrs`,
:func:`failure_attrs` and :func:`retry_attrs`; readers turn a trial into a
:class:`TrialRecord` (or ask :func:`cell_of`, :func:`failure_kind`, :func:`is_counted`);
SQL readers take the names from :class:`Attr`. No torch here: the API process reads it.

How a finished trial counts (``failure_kind`` is a user attribute of FAIL trials):

========================  ===========  ===============  ==========================
what happened             state        failure_kind     counts toward ``n_trials``
========================  ===========  ===============  ==========================
trained to the end        COMPLETE     -                yes
pruned                    PRUNED       -                yes
loss became NaN or inf    FAIL         ``diverged``     yes (an outcome of the model)
exception while training  FAIL         ``error``        yes
stopped (pause, SIGTERM)  FAIL         ``interrupted``  no: its parameters are requeued
worker died (heartbeat)   FAIL         ``stale``        no: its parameters are requeued
failed before training    FAIL         ``setup``        no: requeued (at most
                                                        :data:`MAX_SETUP_FAILURES` times
                                                        in a row, then ``error``)
========================  ===========  ===============  ==========================

A FAIL trial without a recorded kind counts as ``error``.

Under balanced allocation every search trial records its *deal* (:attr:`Attr.DEAL`): the
index, among the study's ``n_trials``, whose cell type, sampler seed and kind of draw it
runs. A requeued copy keeps its deal, so however many trials fail or are requeued, the
counted trials of a study hold each deal once and the per-cell counts are those dealt.

A study with a warm start (:mod:`cellsearch.search.study.seeding`) shows its sampler's
adaptive draws the best trials of earlier studies; a trial so proposed records how many
it was shown (:attr:`Attr.WARM_START`). Those earlier trials are never trials of the
study: they hold no deal, use no budget and are no draw.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

import cellsearch

if TYPE_CHECKING:
    from cellsearch.search.trial.trainer import TrainResult
    from cellsearch.search.trial_config import TrialConfig

CELL_PARAM = "cell_type"
"""The categorical parameter every trial samples its cell type as (even with one cell)."""
COUNTED_FAILURES = ("diverged", "error")
REQUEUED_FAILURES = ("interrupted", "stale", "setup")
MAX_SETUP_FAILURES = 3
"""Failures before training (task preparation, sampling, building the model, recording) a
trial and its copies may have in a row; the last one is recorded as ``error`` (a draw
that failed), so a fault that never heals cannot requeue a trial for ever."""


class Attr(StrEnum):
    """The user attributes cellsearch writes on a trial (Optuna's ``trial_user_attributes``)."""

    # written once the model is built (the static attributes)
    CELL_TYPE = "cell_type"
    HIDDEN_SIZE = "hidden_size"
    NUM_LAYERS = "num_layers"
    CELL_OPTIONS = "cell_options"
    PARAM_COUNT = "param_count"
    DEVICE = "device"
    SEED = "seed"
    TORCH_VERSION = "torch_version"
    CELLSEARCH_VERSION = "cellsearch_version"
    # written with the outcome, once trained
    SECONDS = "seconds"
    SECONDS_PER_EPOCH = "seconds_per_epoch"
    EPOCHS_RUN = "epochs_run"
    SAMPLES_PER_SECOND = "samples_per_second"
    BEST_EPOCH = "best_epoch"
    BEST_VAL_LOSS = "best_val_loss"
    TEST_LOSS = "test_loss"
    TEST_METRIC = "test_metric"
    TEST_METRIC_NAME = "test_metric_name"
    STOP_REASON = "stop_reason"
    PRECISION = "precision"
    NOTES = "notes"
    PEAK_MEMORY_BYTES = "peak_memory_bytes"
    # written on a FAIL trial
    FAILURE_KIND = "failure_kind"
    FAILURE_REASON = "failure_reason"
    # written on a requeued copy of a trial
    RETRY_OF = "retry_of"
    RETRY_REASON = "retry_reason"
    # written on a re-evaluation trial (a search configuration retrained with a fresh seed)
    REEVALUATION_OF = "reevaluation_of"
    REEVALUATION_JOB = "reevaluation_job"
    REEVALUATION_SEED = "reevaluation_seed"
    # written on a freshly sampled search trial of a study with a random phase (kept by
    # its requeued copies): a Draw
    DRAW = "draw"
    # written on every search trial once it is taken (kept by its requeued copies): the
    # index of the deal it runs (cell type, sampler seed, kind of draw)
    DEAL = "deal"
    # written on a requeued copy: how many of its chain failed before training in a row
    SETUP_FAILURES = "setup_failures"
    # written on a requeued copy once its model is built: the epoch it resumed after (0:
    # from the start), and why it did not resume from a newer checkpoint, if it did not
    RESUMED_FROM = "resumed_from"
    RESUME_NOTE = "resume_note"
    # written on a finished trial whose model should have been kept and was not: why
    ARTIFACT_NOTE = "artifact_note"
    # written on a freshly sampled search trial whose sampler was also shown earlier
    # studies' trials (a warm start; kept by its requeued copies): how many
    WARM_START = "warm_start"


class Draw(StrEnum):
    """How a search trial's configuration was drawn (:attr:`Attr.DRAW`)."""

    RANDOM = "random"  # at random from the search space: independent of every other draw
    ADAPTIVE = "adaptive"  # proposed by the sampler from the cell type's earlier trials


@dataclass(frozen=True)
class TrialRecord:
    """One trial as cellsearch reads it: Optuna's fields plus every attribute, typed.

    Attributes absent from a trial (not yet written, or written by an older version) are
    None. ``learning_curve`` maps each epoch to the validation objective reported after it
    (None where it was not finite).
    """

    number: int
    state: str  # Optuna's state name, lower case: running, waiting, complete, pruned, fail
    value: float | None
    cell_type: str | None
    params: dict[str, Any]
    started_at: datetime | None = None
    completed_at: datetime | None = None
    learning_curve: dict[int, float | None] = field(default_factory=dict)
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
    precision: str | None = None  # what the trial trained in (bf16 falls back to fp32 on CPU)
    notes: str | None = None  # remarks of the run, e.g. that a precision was ignored
    peak_memory_bytes: int | None = None  # peak of allocated GPU memory (CUDA only)
    failure_kind: str | None = None
    failure_reason: str | None = None
    retry_of: int | None = None
    retry_reason: str | None = None
    reevaluation_of: int | None = None  # the search trial whose configuration this retrains
    reevaluation_job: int | None = None
    reevaluation_seed: int | None = None  # 0-based index of the fresh seed
    draw: str | None = None  # a Draw: random or adaptive (studies with a random phase)
    resumed_from: int | None = None  # a requeued copy resumed after this epoch
    resume_note: str | None = None  # why a copy did not resume from a newer checkpoint
    artifact_note: str | None = None  # why a model that should have been kept was not
    warm_start: int | None = None  # earlier studies' trials its sampler was also shown

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        """Read a trial (every attribute name comes from :class:`Attr`)."""
        attrs = trial.user_attrs
        return cls(
            number=trial.number,
            state=trial.state.name.lower(),
            value=finite(trial.value) if trial.values else None,
            cell_type=cell_of(trial),
            params=dict(trial.params),
            started_at=_utc(trial.datetime_start),
            completed_at=_utc(trial.datetime_complete),
            learning_curve={k: finite(v) for k, v in sorted(trial.intermediate_values.items())},
            **{name: attrs.get(name) for name in _ATTR_FIELDS if name != Attr.CELL_TYPE},
        )


_ATTR_FIELDS = tuple(f.name for f in fields(TrialRecord) if f.name in Attr.__members__.values())


def _utc(value: datetime | None) -> datetime | None:
    """A trial's time in UTC, offset included: Optuna records them naive, in the local time
    of the machine that wrote them (taken to be this machine's zone)."""
    return None if value is None else value.astimezone(UTC)


def finite(value: float | None) -> float | None:
    """``value``, or None when it is missing or not finite (JSON cannot carry NaN or inf)."""
    return None if value is None or not math.isfinite(value) else float(value)


def cell_of(trial: FrozenTrial) -> str | None:
    """The cell type of a trial: its sampled parameter, else its attribute.

    The parameter exists from the moment the trial is sampled; the attribute is written
    later (with the first heartbeat or the outcome) and always equals it. SQL aggregates,
    which cannot decode Optuna's categorical parameters, read the attribute of finished
    trials, which always carry it.
    """
    value = trial.params.get(CELL_PARAM, trial.user_attrs.get(Attr.CELL_TYPE))
    return None if value is None else str(value)


def failure_kind(trial: FrozenTrial) -> str:
    """The kind of a FAIL trial; a failure with no recorded kind counts as ``error``."""
    kind = trial.user_attrs.get(Attr.FAILURE_KIND)
    return kind if kind in COUNTED_FAILURES + REQUEUED_FAILURES else "error"


def is_counted(trial: FrozenTrial) -> bool:
    """Whether a trial used one unit of the study's ``n_trials`` budget."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and failure_kind(trial) in COUNTED_FAILURES


def is_reevaluation(trial: FrozenTrial) -> bool:
    """Whether a trial retrains a search trial's configuration with a fresh seed.

    Re-evaluation trials are never shown to the sampler or the pruner, count in their own
    budget, and are summarised apart from the search in the report.
    """
    return Attr.REEVALUATION_OF in trial.user_attrs


def search_trials(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """The trials of the search itself (re-evaluations left out)."""
    return [t for t in trials if not is_reevaluation(t)]


def reevaluation_attrs(of: int, job: int, seed: int) -> dict[str, Any]:
    """The attributes of re-evaluation job ``job``: trial ``of``'s configuration, seed ``seed``."""
    return {Attr.REEVALUATION_OF: of, Attr.REEVALUATION_JOB: job, Attr.REEVALUATION_SEED: seed}


def requeue_attrs(number: int, user_attrs: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The attributes of a requeued copy of trial ``number`` (whose attributes are
    ``user_attrs``): where it comes from, the re-evaluation job it runs, if any, so that
    the copy runs the same job, the deal, cell type, kind of draw and warm start it
    repeats, and how many of its chain failed before training in a row (counted on by
    :func:`setup_failures`)."""
    keep = (
        Attr.REEVALUATION_OF,
        Attr.REEVALUATION_JOB,
        Attr.REEVALUATION_SEED,
        Attr.DRAW,
        Attr.DEAL,
        Attr.CELL_TYPE,
        Attr.WARM_START,
    )
    job: dict[str, Any] = {k: user_attrs[k] for k in keep if k in user_attrs}
    if user_attrs.get(Attr.FAILURE_KIND) == "setup":
        job[Attr.SETUP_FAILURES] = setup_failures(user_attrs)
    return {**job, **retry_attrs(number, reason)}


def setup_failures(user_attrs: Mapping[str, Any]) -> int:
    """Failures before training in a row of a trial's chain, this trial's own included."""
    before = int(user_attrs.get(Attr.SETUP_FAILURES) or 0)
    return before + (user_attrs.get(Attr.FAILURE_KIND) == "setup")


def resume_attrs(resumed_from: int, note: str | None) -> dict[str, Any]:
    """The attributes of a trial that resumed after epoch ``resumed_from`` (0: it began at
    the start), with why it could not resume from a newer checkpoint (``note``)."""
    attrs: dict[str, Any] = {}
    if resumed_from:
        attrs[Attr.RESUMED_FROM] = resumed_from
    if note:
        attrs[Attr.RESUME_NOTE] = note
    return attrs


def static_attrs(
    config: TrialConfig, *, param_count: int, device: str, seed: int, torch_version: str
) -> dict[str, Any]:
    """The attributes known once the model is built (before training)."""
    return {
        Attr.CELL_TYPE: config.model.cell_type,
        Attr.HIDDEN_SIZE: config.model.hidden_size,
        Attr.NUM_LAYERS: config.model.num_layers,
        Attr.CELL_OPTIONS: config.model.cell_options,
        Attr.PARAM_COUNT: param_count,
        Attr.DEVICE: device,
        Attr.SEED: seed,
        Attr.TORCH_VERSION: torch_version,
        Attr.CELLSEARCH_VERSION: cellsearch.__version__,
    }


def result_attrs(result: TrainResult, metric_name: str) -> dict[str, Any]:
    """The attributes of a finished training run (non-finite numbers become None)."""
    attrs: dict[str, Any] = {
        Attr.SECONDS: result.seconds,
        Attr.SECONDS_PER_EPOCH: result.seconds_per_epoch,
        Attr.EPOCHS_RUN: result.epochs_run,
        Attr.SAMPLES_PER_SECOND: result.samples_per_second,
        Attr.BEST_EPOCH: result.best_epoch,
        Attr.BEST_VAL_LOSS: result.best_val_loss,
        Attr.TEST_LOSS: result.test_loss,
        Attr.TEST_METRIC: result.test_metric,
        Attr.TEST_METRIC_NAME: metric_name,
        Attr.STOP_REASON: result.stop_reason,
        Attr.PRECISION: result.precision,
        Attr.NOTES: "; ".join(result.notes) or None,
        Attr.PEAK_MEMORY_BYTES: result.peak_memory_bytes,
    }
    return {k: finite(v) if isinstance(v, float) else v for k, v in attrs.items()}


def failure_attrs(kind: str, reason: str | None) -> dict[str, Any]:
    """The attributes of a FAIL trial (``kind``: one of the failure kinds above)."""
    if kind not in COUNTED_FAILURES + REQUEUED_FAILURES:
        raise ValueError(f"unknown failure kind {kind!r}")
    return {Attr.FAILURE_KIND: kind, Attr.FAILURE_REASON: reason}


def retry_attrs(number: int, reason: str) -> dict[str, Any]:
    """The attributes of a requeued copy of trial ``number``."""
    return {Attr.RETRY_OF: number, Attr.RETRY_REASON: reason}
