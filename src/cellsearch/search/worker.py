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

import contextlib
import dataclasses
import gc
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
from typing import Any, Protocol

import optuna
import torch

from cellsearch.search import cpu
from cellsearch.search.errors import WorkerError
from cellsearch.search.objective import TrialOutcome, requeue, run_trial
from cellsearch.search.outcomes import is_counted
from cellsearch.search.rdb import record_attrs, running_without_heartbeat
from cellsearch.search.retry import for_trial, is_transient, summary
from cellsearch.search.samplers import make_pruner, make_sampler
from cellsearch.search.spec import StudySpec
from cellsearch.search.tasks import TaskData, build_task

log = logging.getLogger(__name__)
REGISTRY_MIN_GAP = 1.0  # seconds: a busy worker updates its registry row about this often


@dataclass(frozen=True)
class Claim:
    """One unit of a study's budget, taken by a worker."""

    study_name: str
    spec: StudySpec
    index: int  # 0-based order of the claim within the study
    incarnation: str  # changes when a study is deleted and made again under its name
    generation: int = 0  # the ledger's reclaim count when the unit was claimed


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker tells the registry on every heartbeat."""

    worker_id: str
    host: str
    pid: int
    device: str
    machine: str = ""  # the kernel instance (see cellsearch.search.cpu.machine_id)
    torch_threads: int | None = None
    study_name: str | None = None
    trial_number: int | None = None


class StudyQueue(Protocol):
    """The service's side of the worker loop (lifecycle and budget ledger)."""

    def active_studies(self) -> list[tuple[str, str]]:
        """Name and incarnation of every study whose status is ``running``."""

    def claim(self) -> Claim | None:
        """Atomically take one unit of some running study's budget, or ``None``."""

    def release(self, study_name: str, generation: int) -> None:
        """Give one unit back (its trial was requeued), unless the ledger's reclaim count
        is no longer ``generation`` (a reclaim freed the unit already)."""

    def generation(self, study_name: str) -> int | None:
        """The ledger's reclaim count, or ``None`` if the study no longer exists."""

    def status(self, study_name: str) -> str | None:
        """The study's lifecycle status, or ``None`` if it no longer exists."""

    def settle(self, study_name: str, count_finished: Callable[[], int | None]) -> None:
        """Mark the study completed once every unit is used, or reclaim lost units.

        ``count_finished`` is called only when every unit is claimed; it returns the
        number of counted trials, or ``None`` while a trial is still running.
        """

    def dataset(self, dataset_id: str) -> tuple[bytes, str]:
        """The content and format (``npz`` or ``csv``) of an uploaded data set."""

    def beat(self, info: WorkerInfo) -> int:
        """Record that this worker is alive (the worker registry); return how many live
        workers (this one included) share its machine."""

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


def release_cached_memory(device: torch.device) -> tuple[int, int] | None:
    """Free what a failed trial left behind, and on CUDA give the cache back to the driver.

    After an exception (a CUDA out-of-memory error above all) the trial's tensors become
    garbage once its frames are gone; PyTorch's caching allocator would still hold their
    blocks, which the other processes sharing the GPU (``--per-gpu``) could then not use.

    Returns:
        Bytes reserved by the allocator before and after, on CUDA; None elsewhere.
    """
    gc.collect()  # tensors kept alive by reference cycles through the traceback's frames
    if device.type != "cuda":
        return None
    before = torch.cuda.memory_reserved(device)
    torch.cuda.empty_cache()
    after = torch.cuda.memory_reserved(device)
    log.info("released cached GPU memory after a failed trial: %.0f MiB -> %.0f MiB reserved",
             before / 2**20, after / 2**20)  # fmt: skip
    return before, after


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
        torch_threads: int | None = None,
    ) -> None:
        if storage.heartbeat_interval is None:
            raise WorkerError("the storage needs heartbeat_interval set for crash recovery")
        self.storage = storage
        self.queue = queue
        # Optuna's rule: no grace period set means twice the heartbeat interval
        self.grace_period = float(storage.grace_period or 2 * storage.heartbeat_interval)
        # how long a running trial's storage calls ride out an unreachable database: past
        # the grace period other workers fail the trial as stale, so longer gains nothing
        self.patience = self.grace_period
        self.device = device
        self.poll_interval = poll_interval
        # None: share the machine's CPUs with the other workers on it (cellsearch.search.cpu)
        self.fixed_threads = torch_threads
        self._cpus = cpu.usable_cpus(cpu.cgroup_cpu_quota())
        self._neighbours = 1
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        self.info = WorkerInfo(
            worker_id=worker_id or uuid.uuid4().hex,
            host=socket.gethostname(),
            pid=os.getpid(),
            device=str(device),
            machine=cpu.machine_id(),
            torch_threads=torch.get_num_threads(),
        )
        self._stop = threading.Event()
        self._data: OrderedDict[tuple[str, int], TaskData] = OrderedDict()
        self._studies: OrderedDict[str, tuple[optuna.Study, str]] = OrderedDict()
        self._last_stale_check = 0.0
        self._registry_beat_at = -REGISTRY_MIN_GAP  # when the registry row was last written
        self._silent_since: dict[int, float] = {}  # running trial id -> first seen without beat

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
        _quietly(self._beat, "worker registry beat")  # registered, and its neighbours known
        try:
            while not self.stopping and (max_trials is None or ran < max_trials):
                try:
                    outcome = self.step()
                except Exception as exc:  # the database went away, a bad spec, ...: keep going
                    if is_transient(exc):
                        log.warning("database unavailable (%s); retrying in %.1f s",
                                    summary(exc), self.poll_interval)  # fmt: skip
                    else:
                        log.exception("worker step failed; retrying in %.1fs", self.poll_interval)
                    self._stop.wait(self.poll_interval)
                    continue
                if outcome is None:
                    _quietly(self._beat, "worker registry beat")
                    self._stop.wait(self.poll_interval)
                else:
                    ran += 1
        finally:
            _quietly(lambda: self.queue.retire(self.info.worker_id), "leaving the worker registry")
        return ran

    def step(self) -> TrialOutcome | None:
        """Run one trial of a runnable study; ``None`` when there is nothing to do."""
        self.recover_stale()
        claim = self.queue.claim()
        if claim is None:
            return None
        name, spec = claim.study_name, claim.spec
        self.size_threads()
        study = self._study(name, claim.incarnation)
        study.sampler = make_sampler(spec, claim.index)
        study.pruner = make_pruner(spec)
        with warnings.catch_warnings():  # we record heartbeats ourselves (see _Heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            trial = study.ask()
        # The first heartbeat comes from the heartbeat thread after one interval (a shorter
        # trial never writes one); a worker that dies before it is caught by recover_stale's
        # watch on silent trials.
        info = WorkerInfo(
            **{**self.info.__dict__, "study_name": name, "trial_number": trial.number}
        )
        delay = max(0.0, self._registry_beat_at + REGISTRY_MIN_GAP - time.monotonic())
        heartbeat = _Heartbeat(self.storage, trial, lambda: self._beat(info), delay)
        with heartbeat:
            outcome = run_trial(
                study,
                trial,
                spec,
                self._task_data(spec),
                self.device,
                should_continue=lambda: not self.stopping and self.queue.status(name) == "running",
                on_start=heartbeat.started,
                patience=self.patience,
            )
        if outcome.outcome == "error":  # out of memory, among others: give the memory back
            release_cached_memory(self.device)
        if outcome.outcome == "interrupted":
            self._requeue_interrupted(
                study, trial, outcome.reason or "interrupted", claim.generation
            )
        self._settle(study)
        return outcome

    def _requeue_interrupted(
        self, study: optuna.Study, trial: optuna.Trial, reason: str, generation: int
    ) -> None:
        name = study.study_name
        storage = for_trial(trial.number, self.patience)
        if storage(lambda: self.queue.status(name), "status check") != "cancelled":
            storage(lambda: requeue(study, trial.params, trial.number, reason), "requeue")
        storage(lambda: self.queue.release(name, generation), "budget release")

    def recover_stale(self, *, force: bool = False) -> int:
        """Fail trials whose worker stopped sending heartbeats and requeue them.

        A trial is stale when its last heartbeat is older than the grace period, or when it
        has run without any heartbeat for longer than the grace period as this worker has
        watched it (its worker died between ``ask`` and the first heartbeat). The second
        check uses this worker's own clock only, so clock skew between hosts cannot fail
        a live trial. Checks run at most once per heartbeat interval.
        """
        interval = float(self.storage.heartbeat_interval or 0)
        now = time.monotonic()
        if not force and now - self._last_stale_check < interval:
            return 0
        self._last_stale_check = now
        recovered = 0
        silent_now: dict[int, float] = {}
        for name, incarnation in self.queue.active_studies():
            study = self._study(name, incarnation)
            stale = set(self.storage._get_stale_trial_ids(study._study_id))
            for trial_id in running_without_heartbeat(self.storage, study._study_id):
                first_seen = self._silent_since.get(trial_id, now)
                silent_now[trial_id] = first_seen
                if now - first_seen > self.grace_period:
                    stale.add(trial_id)
            for trial_id in sorted(stale):
                if self._fail_stale(study, trial_id):
                    recovered += 1
            self._settle(study)
        self._silent_since = silent_now
        return recovered

    def _fail_stale(self, study: optuna.Study, trial_id: int) -> bool:
        reason = "the worker running it stopped sending heartbeats"
        # read while the trial still runs: no reclaim can free its unit before it is failed
        generation = self.queue.generation(study.study_name)
        if generation is None:
            return False  # the study is gone
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
        self.queue.release(study.study_name, generation)
        return True

    def _settle(self, study: optuna.Study) -> None:
        # A WAITING (requeued) trial holds no unit; if its unit was never given back (the
        # release hit a dead connection) only settle's reclaim can free one for it.
        def count_finished() -> int | None:
            trials = study.get_trials(deepcopy=False)
            if any(t.state == optuna.trial.TrialState.RUNNING for t in trials):
                return None
            return sum(is_counted(t) for t in trials)

        self.queue.settle(study.study_name, count_finished)

    def _study(self, name: str, incarnation: str) -> optuna.Study:
        """The Study object for ``name``, kept between trials.

        Keeping it keeps Optuna's per-study trial cache, so ``ask`` reads only the trials
        that changed instead of the whole study (a new ``load_study`` per claim re-read
        every trial). A study deleted and made again under the same name is a new study
        with a new ``incarnation`` (its Optuna id alone cannot tell: SQLite reuses ids).
        """
        cached = self._studies.get(name)
        if cached is not None and cached[1] == incarnation:
            self._studies.move_to_end(name)
            return cached[0]
        study = optuna.load_study(study_name=name, storage=self.storage)
        self._studies[name] = (study, incarnation)
        while len(self._studies) > 8:
            self._studies.popitem(last=False)
        return study

    def _task_data(self, spec: StudySpec) -> TaskData:
        """The task's tensors, kept per task spec and seed (not per study name: a study
        made again under the same name may define another task)."""
        key = (spec.task.model_dump_json(), spec.seed)
        if key not in self._data:
            self._data[key] = build_task(spec.task, spec.seed, resolve_dataset=self.queue.dataset)
            while len(self._data) > 4:
                self._data.popitem(last=False)
        self._data.move_to_end(key)
        return self._data[key]

    def _beat(self, info: WorkerInfo | None = None) -> None:
        self._neighbours = self.queue.beat(info or self.info)
        self._registry_beat_at = time.monotonic()

    def size_threads(self) -> int:
        """Set torch's thread count to this worker's share of the machine's CPUs.

        A no-op when the count was fixed; otherwise the share follows the number of live
        workers on the machine at the last registry beat. Returns the count in use.
        """
        if self.fixed_threads is None:
            threads = cpu.threads_per_worker(self._cpus, self._neighbours)
            if threads != torch.get_num_threads():
                log.info("%d worker(s) on this machine's %d CPUs: %d torch thread(s) each",
                         self._neighbours, self._cpus, threads)  # fmt: skip
                torch.set_num_threads(threads)
        if self.info.torch_threads != torch.get_num_threads():
            self.info = dataclasses.replace(self.info, torch_threads=torch.get_num_threads())
        return torch.get_num_threads()


class _Heartbeat:
    """A thread that records the running trial's heartbeat (and the worker's).

    The trial's own heartbeat is first written after one interval, together with its
    static attributes (see :meth:`started`), then every interval; a trial shorter than the
    interval writes none here. The worker registry hears of the trial after
    ``registry_delay`` seconds (zero when the worker's last registry beat is older than
    :data:`REGISTRY_MIN_GAP`), so a worker running many short trials updates its registry
    row about once a second, not once a trial.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, trial: optuna.Trial,
                 beat: Callable[[], None], registry_delay: float = 0.0) -> None:  # fmt: skip
        self._interval = float(storage.heartbeat_interval or 1)
        self._registry_delay = registry_delay
        self._trial = trial
        self._beat = beat
        self._pending: dict[str, Any] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cellsearch-heartbeat", daemon=True)

    def started(self, attrs: dict[str, Any]) -> None:
        """Write ``attrs`` (the trial's static attributes) with the next heartbeat."""
        self._pending = attrs

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        registry_at: float | None = start + self._registry_delay
        tick_at = start + self._interval
        while True:
            now = time.monotonic()
            if registry_at is not None and now >= registry_at:
                _quietly(self._beat, "worker registry beat")
                registry_at = None
            if now >= tick_at:
                _quietly(self._record, "trial heartbeat")
                _quietly(self._beat, "worker registry beat")
                tick_at += self._interval
            wake = tick_at if registry_at is None else min(registry_at, tick_at)
            if self._done.wait(max(0.0, wake - time.monotonic())):
                return

    def _record(self) -> None:
        attrs, self._pending = self._pending, {}
        # the trial may have ended (or been failed as stale) while this tick ran
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            record_attrs(self._trial, attrs, heartbeat=True)


def _quietly(fn: Callable[[], object], what: str) -> None:
    try:
        fn()
    except Exception as exc:  # a lost connection must not kill the heartbeat or the exit path
        if is_transient(exc):  # one line per tick while the database is away, no traceback
            log.warning("%s skipped: database unavailable (%s)", what, summary(exc))
        else:
            log.warning("%s failed; ignored", what, exc_info=True)
