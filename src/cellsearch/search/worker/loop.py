"""The worker loop: claim a unit of a study's budget, run one trial, repeat.

The study lifecycle, the budget ledger and the worker registry live in the service's
tables; the worker reaches them only through its :class:`~.protocol.Backend`, so this
package needs no service code. Optuna's RDB storage holds the trials and is the single
source of truth.

Guarantees (with any number of workers on one database):

* exactly ``n_trials`` counted trials: a unit is claimed atomically before ``ask``, and
  requeued trials give their unit back, so the ledger never overshoots;
* a worker that dies mid-trial stops sending heartbeats; after the grace period any
  other worker fails the trial as ``stale`` and requeues its parameters (:mod:`.recovery`);
* :meth:`Worker.stop` (SIGTERM) ends the current trial after its epoch and requeues it.

An idle worker is quiet: it waits for a work signal with a slow fallback poll where the
backend has one (:mod:`.idle`), and first lets go of what it kept for the studies it ran
(their ``Study`` objects and task data), so that a waiting worker holds little memory.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import socket
import threading
import time
import traceback
import uuid
import warnings
from collections import OrderedDict

import optuna
import torch

from cellsearch.search import record
from cellsearch.search.errors import WorkerError
from cellsearch.search.optuna_adapter import (
    check_internals,
    load_study,
    record_attrs,
    take_waiting_trial,
)
from cellsearch.search.study import reevaluation
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import TaskData, build_task
from cellsearch.search.trial.keeping import Keeper
from cellsearch.search.trial.objective import TrialOutcome, requeue, run_trial
from cellsearch.search.trial.retry import for_trial, is_transient, summary
from cellsearch.search.worker import cpu, device, memory
from cellsearch.search.worker.deals import Taken, record_deal, take_search_trial
from cellsearch.search.worker.heartbeat import Heartbeat, quietly
from cellsearch.search.worker.idle import IdleWait
from cellsearch.search.worker.protocol import Backend, Claim, WorkerInfo
from cellsearch.search.worker.recovery import StaleTrials, settle

log = logging.getLogger(__name__)
REGISTRY_MIN_GAP = 1.0  # seconds: a busy worker updates its registry row about this often


class Worker:
    """Runs trials of whatever studies are runnable, one at a time.

    Args:
        storage: Optuna's RDB storage, with a heartbeat interval.
        backend: The service's ledger, worker registry and data sets.
        device: Where to train.
        poll_interval: Seconds between looks for work while there is none: the first
            wait, with a work signal; every wait without one (SQLite).
        idle_poll_max: The longest wait between looks for work with a work signal.
        worker_id: This worker's id in the registry (default: a random one).
        torch_threads: A fixed torch thread count; None shares the machine's CPUs with
            the other workers on it (:mod:`cellsearch.search.worker.cpu`).
        keeper: Where trials keep checkpoints and models (:mod:`.artifacts`); None keeps
            nothing (a requeued copy then starts over).

    Raises:
        WorkerError: the storage has no heartbeat interval.
        OptunaInternalsError: the installed Optuna moved an internal the worker relies on
            (:func:`cellsearch.search.optuna_adapter.check_internals`).
    """

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        backend: Backend,
        *,
        device: torch.device,
        poll_interval: float = 1.0,
        idle_poll_max: float = 60.0,
        worker_id: str | None = None,
        torch_threads: int | None = None,
        keeper: Keeper | None = None,
    ) -> None:
        if storage.heartbeat_interval is None:
            raise WorkerError("the storage needs heartbeat_interval set for crash recovery")
        check_internals()  # an Optuna that moved what the worker relies on fails here, loudly
        self.storage = storage
        self.backend = backend
        self.ledger = backend.ledger
        self.keeper = keeper  # checkpoints and kept models; None keeps nothing
        # Optuna's rule: no grace period set means twice the heartbeat interval
        self.grace_period = float(storage.grace_period or 2 * storage.heartbeat_interval)
        # how long a running trial's storage calls ride out an unreachable database: past
        # the grace period other workers fail the trial as stale, so longer gains nothing
        self.patience = self.grace_period
        self.device = device
        self.poll_interval = poll_interval
        self._holding = False  # whether it keeps studies or data from trials it ran
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
        self.idle = IdleWait(backend.signal, poll_interval=poll_interval,
                             idle_poll_max=idle_poll_max, beat_every=self.grace_period / 2,
                             stop=self._stop)  # fmt: skip
        self._data: OrderedDict[tuple[str, int], TaskData[torch.Tensor]] = OrderedDict()
        self._studies: OrderedDict[str, tuple[optuna.Study, str]] = OrderedDict()
        self._registry_beat_at = -REGISTRY_MIN_GAP  # when the registry row was last written
        self.stale = StaleTrials(storage, self.ledger, self._study, self.grace_period)

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
        quietly(self._beat, "worker registry beat")  # registered, and its neighbours known
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
                    self._wait_for_work()
                else:
                    ran += 1
        finally:
            retire = self.backend.registry.retire
            quietly(lambda: retire(self.info.worker_id), "leaving the worker registry")
            self.idle.close()
        return ran

    def _wait_for_work(self) -> None:
        """Let go of what past studies left behind, then wait (:class:`.idle.IdleWait`)."""
        if self._holding:
            self._studies.clear()
            self._data.clear()
            self._holding = False
            gc.collect()
            memory.trim()  # freed pages back to the system: the idle worker shows it
        self.idle.wait(self._beat, self._registry_beat_at)

    def _working(self) -> None:
        """A claim succeeded: the worker is busy (see :meth:`.idle.IdleWait.working`)."""
        self._holding = True
        self.idle.working()

    def step(self) -> TrialOutcome | None:
        """Run one trial of a runnable study; ``None`` when there is nothing to do."""
        self.recover_stale()
        if self.stale.none_running:  # it just looked: no claim can succeed (an idle
            return None  # worker's look is one statement, not three; new work notifies)
        claim = self.ledger.claim()
        if claim is None:
            return None
        self._working()
        name, spec = claim.study_name, claim.spec
        self.size_threads()
        study = self._study(name, claim.incarnation)
        # an error before a trial exists leaves its unit to the ledger's reclaim (settle)
        taken = self._take_trial(study, spec, claim)
        if taken is None:
            self.ledger.release(name, claim.reclaims)
            return None
        trial = taken if isinstance(taken, optuna.Trial) else taken.trial
        # The first heartbeat comes from the heartbeat thread after one interval (a shorter
        # trial never writes one); a worker that dies before it is caught by the stale
        # watch on silent trials.
        info = dataclasses.replace(self.info, study_name=name, trial_number=trial.number)
        delay = max(0.0, self._registry_beat_at + REGISTRY_MIN_GAP - time.monotonic())
        heartbeat = Heartbeat(self.storage, trial, lambda: self._beat(info), delay)
        with heartbeat:
            try:
                if isinstance(taken, Taken):
                    trial = record_deal(
                        study, spec, taken, claim.index, grace_period=self.grace_period,
                        lock=lambda: self.ledger.deal_lock(name),
                    )  # fmt: skip
                outcome = run_trial(
                    study,
                    trial,
                    spec,
                    self._task_data(spec),
                    self.device,
                    should_continue=lambda: (
                        not self.stopping and self.ledger.status(name) == "running"
                    ),
                    on_start=heartbeat.started,
                    patience=self.patience,
                    keeper=self.keeper,
                )
            except Exception as exc:
                if is_transient(exc):
                    raise  # the database is away: the stale check requeues the trial later
                outcome = self._failed_before_training(study, trial, exc, claim.reclaims)
        if outcome.outcome == "error":  # out of memory, among others: give the memory back
            device.release_cached_memory(self.device)
        if outcome.outcome == "interrupted":
            self._requeue(study, trial, outcome.reason or "interrupted", claim.reclaims)
        settle(self.ledger, study, spec, grace_period=self.grace_period)
        return outcome

    def _take_trial(
        self, study: optuna.Study, spec: StudySpec, claim: Claim
    ) -> Taken | optuna.Trial | None:
        """The trial a claim runs: a search trial and its deal (:mod:`.deals`), or a
        re-evaluation job (None when none is left to run)."""
        if claim.reevaluation is not None:
            return self._reevaluation_trial(study, spec, claim.reevaluation)
        with warnings.catch_warnings():  # we record heartbeats ourselves (see Heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            return take_search_trial(
                study, self.storage, spec, claim.index, grace_period=self.grace_period,
                fresh=claim.fresh, new_deal=lambda: self.ledger.new_deal(claim.study_name),
            )  # fmt: skip

    def _failed_before_training(
        self, study: optuna.Study, trial: optuna.Trial, exc: Exception, reclaims: int
    ) -> TrialOutcome:
        """End a trial that failed before it trained (the task's data, sampling, building
        the model, recording), at once: ``setup``, requeued with its deal and its unit given
        back, up to :data:`~cellsearch.search.record.MAX_SETUP_FAILURES` times in a row;
        the last time ``error``, a draw that failed. Never left running to go stale."""
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("trial %d of %s failed before training: %s", trial.number,
                    study.study_name, traceback.format_exc())  # fmt: skip
        attrs = record.failure_attrs("setup", reason)
        if record.setup_failures({**trial.user_attrs, **attrs}) >= record.MAX_SETUP_FAILURES:
            reason = f"failed before training {record.MAX_SETUP_FAILURES} times; last: {reason}"
            attrs = record.failure_attrs("error", reason)
        retried = for_trial(trial.number, self.patience)
        try:
            retried(lambda: record_attrs(trial, attrs), "attributes")
            failed = optuna.trial.TrialState.FAIL
            retried(lambda: study.tell(trial, state=failed, skip_if_finished=True), "outcome")
        except optuna.exceptions.UpdateFinishedTrialError:
            return TrialOutcome(trial.number, "stale", reason="failed as stale meanwhile")
        if attrs[record.Attr.FAILURE_KIND] == "setup":
            self._requeue(study, trial, reason, reclaims)
            return TrialOutcome(trial.number, "setup", reason=reason)
        return TrialOutcome(trial.number, "error", reason=reason)

    def _reevaluation_trial(
        self, study: optuna.Study, spec: StudySpec, ticket: int
    ) -> optuna.Trial | None:
        """The trial of a re-evaluation claim: job ``ticket`` of the plan, or (a ticket past
        the plan's end, after a requeue gave a unit back) a requeued copy of a job.

        The job is enqueued (its configuration as fixed parameters, its identity as
        attributes) and then one waiting trial is taken, atomically, as ``ask`` takes one;
        every job is enqueued by exactly one ticket and every claim takes exactly one
        waiting trial, so each job runs once however the claims interleave. Its sampler
        never samples (every parameter is fixed) and its pruner never prunes.
        """
        jobs = reevaluation.plan(spec, study.get_trials(deepcopy=False))
        if ticket < len(jobs):
            job = jobs[ticket]
            attrs = record.reevaluation_attrs(job.of, job.index, job.seed)
            study.enqueue_trial(job.params, user_attrs=attrs, skip_if_exists=False)
        study.sampler = optuna.samplers.RandomSampler(seed=ticket)
        study.pruner = optuna.pruners.NopPruner()
        trial = take_waiting_trial(study)
        if trial is None:  # nothing left to re-run (its copy was taken meanwhile)
            log.warning("study %s: re-evaluation ticket %d found no waiting job",
                        study.study_name, ticket)  # fmt: skip
        return trial

    def recover_stale(self, *, force: bool = False) -> int:
        """Fail and requeue the stale trials of every active study (see :mod:`.recovery`)."""
        return self.stale.recover(force=force)

    def _requeue(
        self, study: optuna.Study, trial: optuna.Trial, reason: str, reclaims: int
    ) -> None:
        """Enqueue a copy of a trial this worker ended (unless its study was cancelled) and
        give its unit back."""
        name = study.study_name
        retried = for_trial(trial.number, self.patience)
        if retried(lambda: self.ledger.status(name), "status check") != "cancelled":
            retried(lambda: requeue(study, trial, reason), "requeue")
        retried(lambda: self.ledger.release(name, reclaims), "budget release")

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
        study = load_study(name, self.storage)
        self._studies[name] = (study, incarnation)
        while len(self._studies) > 8:
            self._studies.popitem(last=False)
        return study

    def _task_data(self, spec: StudySpec) -> TaskData[torch.Tensor]:
        """The task's tensors, kept per task spec and seed (not per study name: a study
        made again under the same name may define another task)."""
        key = (spec.task.model_dump_json(), spec.seed)
        if key not in self._data:
            resolve = self.backend.datasets
            self._data[key] = build_task(spec.task, spec.seed, resolve_dataset=resolve)
            while len(self._data) > 4:
                self._data.popitem(last=False)
        self._data.move_to_end(key)
        return self._data[key]

    def _beat(self, info: WorkerInfo | None = None) -> None:
        self._neighbours = self.backend.registry.beat(info or self.info)
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
