"""The worker's :class:`~cellsearch.search.trial.keeping.Keeper`: checkpoints and kept models
in an Optuna artifact store, each recorded in the service's index.

- **Checkpoints.** A running trial's state is written every so often (the interval, see
  :class:`~cellsearch.search.trial.checkpoint.Checkpointer`), its record first, then its
  file; the trial's older checkpoint is removed once the new one is whole. A requeued
  copy resumes from the newest readable checkpoint of its chain (the trial it copies,
  that trial's own original...); one that is missing or damaged is skipped and the reason
  recorded on the copy, and with none left the copy starts over.
- **Models.** When a trial finishes its chain's checkpoints are removed. A completed
  search trial's best-epoch weights are kept while it is among the ``keep_top_k`` best of
  its cell type (a model that falls out is removed), and every completed re-evaluation
  run's, within the study's byte limit. A kept model is listed among the study's
  artifacts, which optuna-dashboard shows.

Storage errors while writing a checkpoint or a model are logged and leave the trial to
train on: what is not kept is the only loss.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.study import StudyDirection

from cellsearch.search import record
from cellsearch.search.optuna_adapter import (
    attach_study_artifact,
    forget_study_artifact,
    study_id_of,
)
from cellsearch.search.trial.checkpoint import (
    Checkpointer,
    CheckpointError,
    TrainState,
    digest,
    dump_state,
    load_state,
)
from cellsearch.search.trial.keeping import ArtifactEntry, ArtifactIndex, new_artifact_id

log = logging.getLogger(__name__)


class TrialArtifacts:
    """Checkpoints and kept models of the trials a worker runs (see the module docstring).

    Args:
        store: An Optuna artifact store (``open_reader``, ``write``, ``remove``).
        index: The service's record of artifacts.
        storage: Optuna's storage (a kept model is listed among its study's artifacts).
        checkpoint_every_s: Seconds of training a running trial may leave unsaved.
        keep_top_k: Completed trials per cell type whose models are kept (0: none).
        max_study_bytes: Bytes of artifacts one study may hold.
    """

    def __init__(
        self,
        store: Any,
        index: ArtifactIndex,
        storage: optuna.storages.BaseStorage,
        *,
        checkpoint_every_s: float,
        keep_top_k: int,
        max_study_bytes: int,
    ) -> None:
        self.store = store
        self.index = index
        self.storage = storage
        self.checkpoint_every_s = checkpoint_every_s
        self.keep_top_k = keep_top_k
        self.max_study_bytes = max_study_bytes
        self._checkpointed: set[tuple[str, int]] = set()  # trials that wrote one here

    # --- checkpoints ------------------------------------------------------------------

    def checkpointer(self, study: optuna.Study, trial: optuna.Trial) -> Checkpointer:
        """Writes ``trial``'s checkpoints, keeping only its newest."""
        name, number = study.study_name, trial.number

        def write(state: TrainState) -> bool:
            try:
                blob = dump_state(state)
                entry = ArtifactEntry(
                    id=new_artifact_id(), study_name=name, trial_number=number,
                    kind="checkpoint", size_bytes=len(blob), sha256=digest(blob),
                    epoch=state.epoch,
                )  # fmt: skip
                self._checkpointed.add((name, number))  # first: a row a failed write left
                self.index.add(entry)
                try:
                    self.store.write(entry.id, io.BytesIO(blob))
                except BaseException:
                    self.index.remove(entry.id)
                    raise
            except Exception:  # a full disk or an unreachable store must not stop training
                log.warning("trial %d of %s: checkpoint not written (the next epoch tries "
                            "again)", number, name, exc_info=True)  # fmt: skip
                return False
            try:
                for old in self.index.of_trials(name, [number], "checkpoint"):
                    if old.id != entry.id:
                        self._delete(old)
            except Exception:  # the new one is whole; a stale older one is removed later
                log.warning("trial %d of %s: an older checkpoint not removed", number, name,
                            exc_info=True)  # fmt: skip
            return True

        return Checkpointer(self.checkpoint_every_s, write)

    def resume(
        self, study: optuna.Study, trial: optuna.Trial
    ) -> tuple[TrainState | None, str | None]:
        """The newest readable checkpoint of ``trial``'s chain, and what was wrong with the
        newer ones (see the module docstring)."""
        chain = _chain(study, trial)
        if not chain:
            return None, None
        entries = self.index.of_trials(study.study_name, chain, "checkpoint")
        order = {number: i for i, number in enumerate(chain)}  # the nearest ancestor first
        entries.sort(key=lambda e: (-(e.epoch or 0), order[e.trial_number]))
        problems: list[str] = []
        for entry in entries:
            what = f"the checkpoint of trial {entry.trial_number} after epoch {entry.epoch}"
            try:
                with contextlib.closing(self.store.open_reader(entry.id)) as reader:
                    blob = reader.read()
                return load_state(blob, expected_digest=entry.sha256), _note(problems)
            except ArtifactNotFound:
                problems.append(f"{what} is missing from the artifact store")
            except CheckpointError as exc:
                problems.append(f"{what} is unusable: {exc}")
            except Exception as exc:  # an unreachable bucket, a full disk: start over, say why
                problems.append(f"{what} could not be read ({type(exc).__name__}: {exc})")
        return None, _note(problems, restarted=True)

    # --- when a trial has finished -----------------------------------------------------

    def finished(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        model: Callable[[], bytes] | None,
        value: float | None,
        cell_type: str | None,
    ) -> str | None:
        """Remove the chain's checkpoints; keep ``model`` if it is among the best. Never
        raises for the store: a trial's outcome stands whatever befalls its files (a model
        that could not be kept is said in the returned note)."""
        name, chain = study.study_name, _chain(study, trial)
        wrote = (name, trial.number) in self._checkpointed
        self._checkpointed.discard((name, trial.number))
        try:
            # a trial that is no copy and wrote none here has none (nobody else runs it)
            numbers = [trial.number, *chain] if wrote or chain else []
            for entry in self.index.of_trials(name, numbers, "checkpoint"):
                self._delete(entry)
            for entry in self.index.of_trials(name, chain, "model"):  # of a trial that died
                self._delete(entry, study)  # after keeping it: its copy ran again
        except Exception:
            log.warning("trial %d of %s: checkpoints not removed (the sweep of a deleted "
                        "study removes them)", trial.number, name, exc_info=True)  # fmt: skip
        if model is None or value is None or self.keep_top_k == 0:
            return None
        try:
            return self._keep(study, trial, model, value, cell_type)
        except Exception as exc:
            log.warning("trial %d of %s: model not kept", trial.number, name, exc_info=True)
            return f"model not kept: {type(exc).__name__}: {exc}"

    def _keep(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        make_model: Callable[[], bytes],
        value: float,
        cell_type: str | None,
    ) -> str | None:
        name = study.study_name
        rerun = record.Attr.REEVALUATION_OF in trial.user_attrs
        if not rerun and not self._among_best(name, cell_type, value, study.direction):
            return None
        model = make_model()
        held = self.index.study_bytes(name)
        if held + len(model) > self.max_study_bytes:
            return (
                f"model not kept: the study's artifacts ({held} bytes) and this model "
                f"({len(model)} bytes) would exceed max_artifact_bytes={self.max_study_bytes}"
            )
        entry = ArtifactEntry(
            id=new_artifact_id(), study_name=name, trial_number=trial.number, kind="model",
            size_bytes=len(model), sha256=digest(model), cell_type=cell_type, value=value,
            reevaluation=rerun,
        )  # fmt: skip
        self.index.add(entry)
        try:
            self.store.write(entry.id, io.BytesIO(model))
        except BaseException:
            self.index.remove(entry.id)  # no record of a file that is not there
            raise
        filename = f"model-{cell_type}-trial-{trial.number}.safetensors"
        attach_study_artifact(self.storage, study_id_of(study), entry.id, filename)
        if not rerun:
            self._drop_beyond_best(study, cell_type)
        return None

    def _ranked(
        self, name: str, cell_type: str | None, direction: StudyDirection
    ) -> list[ArtifactEntry]:
        """The kept search models of a cell type, best first (ties: the earlier trial)."""
        models = [
            m
            for m in self.index.models(name)
            if m.cell_type == cell_type and not m.reevaluation and m.value is not None
        ]
        sign = -1.0 if direction == StudyDirection.MAXIMIZE else 1.0
        return sorted(models, key=lambda m: (sign * (m.value or 0.0), m.trial_number))

    def _among_best(
        self, name: str, cell_type: str | None, value: float, direction: StudyDirection
    ) -> bool:
        ranked = self._ranked(name, cell_type, direction)
        if len(ranked) < self.keep_top_k:
            return True
        worst = ranked[self.keep_top_k - 1].value or 0.0
        return value > worst if direction == StudyDirection.MAXIMIZE else value < worst

    def _drop_beyond_best(self, study: optuna.Study, cell_type: str | None) -> None:
        ranked = self._ranked(study.study_name, cell_type, study.direction)
        for entry in ranked[self.keep_top_k :]:
            self._delete(entry, study)

    def _delete(self, entry: ArtifactEntry, study: optuna.Study | None = None) -> None:
        """Remove an artifact's file, take a model off its study's list, forget it."""
        with contextlib.suppress(ArtifactNotFound):
            self.store.remove(entry.id)
        if study is not None and entry.kind == "model":
            forget_study_artifact(self.storage, study_id_of(study), entry.id)
        self.index.remove(entry.id)


def _chain(study: optuna.Study, trial: optuna.Trial) -> list[int]:
    """The numbers of the trials ``trial`` copies: its original, that one's original..."""
    if record.Attr.RETRY_OF not in trial.user_attrs:
        return []  # no copy (most trials): no need to read the study's trials
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    chain: list[int] = []
    number = trial.user_attrs.get(record.Attr.RETRY_OF)
    while number is not None and number not in chain:
        chain.append(int(number))
        origin = trials.get(int(number))
        number = None if origin is None else origin.user_attrs.get(record.Attr.RETRY_OF)
    return chain


def _note(problems: Sequence[str], *, restarted: bool = False) -> str | None:
    if not problems:
        return None
    tail = "; restarted from epoch 0" if restarted else "; resumed from an older one"
    return "; ".join(problems) + tail
