"""What a trial keeps of its training: the ports between the objective and the store.

A trial checkpoints while it trains and, once finished, may leave its best-epoch weights
behind as a model; a requeued copy resumes from the last checkpoint of its chain. The
objective (:mod:`.objective`) sees that only through a :class:`Keeper`; the worker's
(:class:`cellsearch.search.worker.artifacts.TrialArtifacts`) keeps the files in an Optuna
artifact store and records each in an :class:`ArtifactIndex`, the service's table. No
torch here: the service imports these names.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    import optuna

    from cellsearch.search.trial.checkpoint import Checkpointer, TrainState

Kind = Literal["checkpoint", "model"]
ARTIFACT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""An artifact id: a UUID in Optuna's form (it makes the ids of what it uploads)."""


def new_artifact_id() -> str:
    """A fresh artifact id."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ArtifactEntry:
    """One artifact as the index records it.

    Attributes:
        id: Its id in the store (:data:`ARTIFACT_ID`).
        study_name: The study of its trial.
        trial_number: Its trial.
        kind: ``checkpoint`` (of a running trial) or ``model`` (kept best-epoch weights).
        size_bytes: Its size.
        sha256: The digest of its bytes.
        cell_type: Its trial's cell type.
        value: A model's objective value (its trial's).
        epoch: A checkpoint's epochs done.
        reevaluation: A model of a seed re-evaluation run.
    """

    id: str
    study_name: str
    trial_number: int
    kind: Kind
    size_bytes: int
    sha256: str
    cell_type: str | None = None
    value: float | None = None
    epoch: int | None = None
    reevaluation: bool = False


class ArtifactIndex(Protocol):
    """The service's record of the artifacts in the store."""

    def add(self, entry: ArtifactEntry) -> None:
        """Record an artifact (before its file is written: a crash leaves a record whose
        file is missing, which readers expect, never a file nobody knows of)."""

    def remove(self, artifact_id: str) -> None:
        """Forget an artifact (after its file was removed); no error if it is unknown."""

    def of_trials(self, study_name: str, numbers: Sequence[int], kind: Kind) -> list[ArtifactEntry]:
        """The artifacts of ``kind`` of these trials of a study, oldest first."""

    def models(self, study_name: str) -> list[ArtifactEntry]:
        """The kept models of a study."""

    def study_bytes(self, study_name: str) -> int:
        """Bytes of every artifact of a study."""


class Keeper(Protocol):
    """What :func:`~.objective.run_trial` asks of the artifact store."""

    def resume(
        self, study: optuna.Study, trial: optuna.Trial
    ) -> tuple[TrainState | None, str | None]:
        """The state a requeued copy resumes from, and why it starts over if it does
        (None, None: nothing to resume, it is no copy or its chain never checkpointed)."""

    def checkpointer(self, study: optuna.Study, trial: optuna.Trial) -> Checkpointer:
        """Writes the trial's checkpoints as it trains."""

    def finished(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        model: Callable[[], bytes] | None,
        value: float | None,
        cell_type: str | None,
    ) -> str | None:
        """Clean up a finished trial's checkpoints and keep its ``model`` (what makes a
        model file's bytes, for a completed trial; called only for a model to keep) if it
        is among the best; returns a note for the trial when a model that should have
        been kept was not."""
