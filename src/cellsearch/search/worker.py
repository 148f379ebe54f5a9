"""The worker loop: claim a unit of a study's budget, run one trial, repeat.

The study lifecycle and the budget ledger live in the service's tables; the worker
reaches them only through the :class:`StudyQueue` protocol, so this module needs no
service code. Optuna's RDB storage holds the trials and is the single source of truth.

Guarantees (with any number of workers on one database):

* exactly ``n_trials`` counted trials: a unit is claimed atomically before ``ask``, and
  requeued trials give their unit back, so the ledger never overshoots;
* a worker that dies mid-trial stops sending heartbeats; after the grace period any
  other worker fails the trial as ``stale`` and requeues its parameters;
* :meth:`Worker.stop` (SIGTERM) ends the current trial after its epoch and requeues it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import optuna
import torch

from cellsearch.search.errors import WorkerError
from cellsearch.search.objective import TrialOutcome, requeue, run_trial
from cellsearch.search.outcomes import is_counted
from cellsearch.search.samplers import make_pruner, make_sampler
from cellsearch.search.spec import StudySpec
from cellsearch.search.tasks import TaskData, build_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """One unit of a study's budget, taken by a worker."""

    study_name: str
    spec: StudySpec
    index: int  # 0-based order of the claim within the study


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker tells the registry on every heartbeat."""

    worker_id: str
    host: str
    pid: int
    device: str
    study_name: str | None = None
    trial_number: int | None = None


class StudyQueue(Protocol):
    """The service's side of the worker loop (lifecycle and budget ledger)."""

    def active_studies(self) -> list[str]:
        """Names of studies whose status is ``running``."""

    def claim(self) -> Claim | None:
        """Atomically take one unit of some running study's budget, or ``None``."""

    def release(self, study_name: str) -> None:
        """Give one unit back (its trial was requeued)."""

    def status(self, study_name: str) -> str | None:
        """The study's lifecycle status, or ``None`` if it no longer exists."""

    def settle(self, study_name: str, count_finished: Callable[[], int]) -> None:
        """Mark the study completed once every unit is used, or reclaim lost units."""

    def dataset(self, dataset_id: str) -> tuple[bytes, str]:
        """The content and format (``npz`` or ``csv``) of an uploaded data set."""

    def beat(self, info: WorkerInfo) -> None:
        """Record that this worker is alive (the worker registry)."""

    def retire(self, worker_id: str) -> None:
        """Remove this worker from the registry on a clean exit."""


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable device.

    Raises:
        WorkerError: CUDA is asked for but unavailable, or the index is out of range.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise WorkerError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise WorkerError(f"device {name!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkerError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    elif device.type != "cpu":
        raise WorkerError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


class Worker:
    """Runs trials of whatever studies are runnable, one at a time."""

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        queue: StudyQueue,
        *,
        device: torch.device,
        poll_interval: float = 1.0,
        worker_id: str | None = None,
    ) -> None:
        if storage.heartbeat_interval is None:
            raise WorkerError("the storage needs heartbeat_interval set for crash recovery")
        self.storage = storage
        self.queue = queue
        self.device = device
        self.poll_interval = poll_interval
        self.info = WorkerInfo(
            worker_id=worker_id or uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=os.getpid(),
            device=str(device),
        )
        self._stop = threading.Event()
        self._data: OrderedDict[str, TaskData] = OrderedDict()
        self._studies: OrderedDict[str, optuna.Study] = OrderedDict()
        self._last_stale_check = 0.0

    def stop(self) -> None:
        """Ask the loop to end after the current epoch (safe from a signal handler)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stop.is_set()

    def run(self, *, max_trials: int | None = None) -> int:
        """Loop until stopped (or ``max_trials`` trials ran); return the trials run."""
        ran = 0
        try:
            while not self.stopping and (max_trials is None or ran < max_trials):
                try:
                    outcome = self.step()
                except Exception:  # the database went away, a bad spec, ...: keep going
                    log.exception("worker step failed; retrying in %.1fs", self.poll_interval)
                    self._stop.wait(self.poll_interval)
                    continue
                if outcome is None:
                    self._beat()
                    self._stop.wait(self.poll_interval)
                else:
                    ran += 1
        finally:
            _quietly(lambda: self.queue.retire(self.info.worker_id))
        return ran

    def step(self) -> TrialOutcome | None:
        """Run one trial of a runnable study; ``None`` when there is nothing to do."""
        self.recover_stale()
        claim = self.queue.claim()
        if claim is None:
            return None
        name, spec = claim.study_name, claim.spec
        study = self._study(name)
        study.sampler = make_sampler(spec, claim.index)
        study.pruner = make_pruner(spec)
        with warnings.catch_warnings():  # we record heartbeats ourselves (see _Heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            trial = study.ask()
        self.storage.record_heartbeat(trial._trial_id)
        info = WorkerInfo(
            **{**self.info.__dict__, "study_name": name, "trial_number": trial.number}
        )
        with _Heartbeat(self.storage, trial._trial_id, lambda: self.queue.beat(info)):
            outcome = run_trial(
                study,
                trial,
                spec,
                self._task_data(name, spec),
                self.device,
                should_continue=lambda: not self.stopping and self.queue.status(name) == "running",
            )
        if outcome.outcome == "interrupted":
            if self.queue.status(name) != "cancelled":
                requeue(study, trial.params, trial.number, outcome.reason or "interrupted")
            self.queue.release(name)
        self._settle(study)
        return outcome

    def recover_stale(self, *, force: bool = False) -> int:
        """Fail trials whose worker stopped sending heartbeats and requeue them."""
        interval = float(self.storage.heartbeat_interval or 0)
        if not force and time.monotonic() - self._last_stale_check < interval:
            return 0
        self._last_stale_check = time.monotonic()
        recovered = 0
        for name in self.queue.active_studies():
            study = self._study(name)
            for trial_id in self.storage._get_stale_trial_ids(study._study_id):
                if self._fail_stale(study, trial_id):
                    recovered += 1
            self._settle(study)
        return recovered

    def _fail_stale(self, study: optuna.Study, trial_id: int) -> bool:
        reason = "the worker running it stopped sending heartbeats"
        try:
            self.storage.set_trial_user_attr(trial_id, "failure_kind", "stale")
            self.storage.set_trial_user_attr(trial_id, "failure_reason", reason)
            if not self.storage.set_trial_state_values(
                trial_id, state=optuna.trial.TrialState.FAIL
            ):
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another worker got there first
        frozen = self.storage.get_trial(trial_id)
        log.warning("trial %d of %s is stale; requeued", frozen.number, study.study_name)
        requeue(study, frozen.params, frozen.number, reason)
        self.queue.release(study.study_name)
        return True

    def _settle(self, study: optuna.Study) -> None:
        # A WAITING (requeued) trial holds no unit; if its unit was never given back (the
        # release hit a dead connection) only settle's reclaim can free one for it.
        if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            return

        def count_finished() -> int:
            return sum(is_counted(t) for t in study.get_trials(deepcopy=False))

        self.queue.settle(study.study_name, count_finished)

    def _study(self, name: str) -> optuna.Study:
        """The Study object for ``name``, kept between trials.

        Keeping it keeps Optuna's per-study trial cache, so ``ask`` reads only the trials
        that changed instead of the whole study (a new ``load_study`` per claim re-read
        every trial). A study deleted and created again under the same name gets a new id:
        the cached object is dropped when the id no longer matches.
        """
        study = self._studies.get(name)
        if study is not None:
            try:
                if self.storage.get_study_id_from_name(name) == study._study_id:
                    self._studies.move_to_end(name)
                    return study
            except KeyError:
                pass
        study = optuna.load_study(study_name=name, storage=self.storage)
        self._studies[name] = study
        while len(self._studies) > 8:
            self._studies.popitem(last=False)
        return study

    def _task_data(self, name: str, spec: StudySpec) -> TaskData:
        if name not in self._data:
            self._data[name] = build_task(spec.task, spec.seed, resolve_dataset=self.queue.dataset)
            while len(self._data) > 4:
                self._data.popitem(last=False)
        self._data.move_to_end(name)
        return self._data[name]

    def _beat(self) -> None:
        _quietly(lambda: self.queue.beat(self.info))


class _Heartbeat:
    """A thread that records the trial's heartbeat (and the worker's) periodically."""

    def __init__(
        self, storage: optuna.storages.RDBStorage, trial_id: int, beat: Callable[[], None]
    ):
        self._storage = storage
        self._trial_id = trial_id
        self._beat = beat
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cellsearch-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        interval = float(self._storage.heartbeat_interval or 1)
        while not self._done.wait(interval):
            _quietly(lambda: self._storage.record_heartbeat(self._trial_id))
            _quietly(self._beat)


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # a lost connection must not kill the heartbeat or the exit path
        log.warning("ignored error in %s", getattr(fn, "__name__", "callback"), exc_info=True)
