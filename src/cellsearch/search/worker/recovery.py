"""Recovering from dead workers: stale trials are failed and requeued, lost units reclaimed.

Any worker does this for every running study, so a study finishes however many of its
workers die. Guarantees:

* a trial whose worker stopped sending heartbeats for the grace period is failed as
  ``stale`` and its parameters requeued, and its budget unit is given back;
* a study whose units are all claimed but not all used by finished trials (a worker died
  between claim and ``ask``, or a release was lost) gets the lost units back (the
  ledger's settle), and is completed once every unit is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

import optuna
from optuna.trial import FrozenTrial

from cellsearch.search import record
from cellsearch.search.optuna_adapter import (
    running_heartbeats,
    settled_trials,
    study_id_of,
    unfinished_trial_ids,
)
from cellsearch.search.study import reevaluation
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.trial.objective import requeue
from cellsearch.search.worker.protocol import Finished, StudyLedger

log = logging.getLogger(__name__)
STALE_REASON = "the worker running it stopped sending heartbeats"


def settle(
    ledger: StudyLedger, study: optuna.Study, spec: StudySpec, *, grace_period: float
) -> None:
    """Let the ledger complete ``study``, begin its re-evaluation, or reclaim its lost units
    (see the protocol).

    A WAITING (requeued) trial holds no unit; if its unit was never given back (the
    release hit a dead connection) only settle's reclaim can free one for it. Nothing is
    settled while a trial is running, nor while a trial failed to be requeued (stale or
    interrupted) less than ``grace_period`` ago has no copy yet: its worker fails it
    first and enqueues the copy next, and a reclaim in between would hand its unit to a
    new trial, leaving the copy waiting for ever once the budget is used.
    """

    def count_finished() -> Finished | None:
        trials = settled_trials(study)  # None while one runs (no running trial read)
        if trials is None or requeue_pending(trials, grace_period):
            return None
        counted = sum(record.is_counted(t) for t in trials)
        return Finished(counted, len(reevaluation.plan(spec, trials)))

    ledger.settle(study.study_name, count_finished)


def requeue_pending(
    trials: Sequence[FrozenTrial], grace_period: float, now: datetime | None = None
) -> bool:
    """Whether a trial failed to be requeued less than ``grace_period`` ago (by the clock
    of the worker that failed it: Optuna's naive local time) still has no copy."""
    copies = {t.user_attrs.get(record.Attr.RETRY_OF) for t in trials}
    now = datetime.now() if now is None else now
    for t in trials:
        if t.state != optuna.trial.TrialState.FAIL or t.number in copies:
            continue
        if record.failure_kind(t) not in record.REQUEUED_FAILURES:
            continue
        done = t.datetime_complete
        if done is not None and (now - done).total_seconds() < grace_period:
            return True
    return False


class StaleTrials:
    """Finds the running trials of active studies whose worker died, and requeues them.

    A trial is stale when its last heartbeat is older than the grace period, or when it
    has run without any heartbeat for longer than the grace period as this watcher has
    seen it (its worker died between ``ask`` and the first heartbeat). The second check
    uses this process's own clock only, so clock skew between hosts cannot fail a live
    trial.

    Args:
        storage: Optuna's storage (its heartbeat table says who is alive).
        ledger: The service's lifecycle and budget ledger.
        study: Returns the Study for a name and incarnation (the worker keeps them).
        grace_period: Seconds without a heartbeat before a trial is stale.
    """

    def __init__(
        self,
        storage: optuna.storages.RDBStorage,
        ledger: StudyLedger,
        study: Callable[[str, str], optuna.Study],
        grace_period: float,
    ) -> None:
        self.storage = storage
        self.ledger = ledger
        self.study = study
        self.grace_period = grace_period
        self._last_check = 0.0
        self._silent_since: dict[int, float] = {}  # running trial id -> first seen without beat
        self.none_running = False  # the last call looked, and no study was running

    def recover(self, *, force: bool = False) -> int:
        """Fail and requeue every stale trial; return how many. Runs at most once per
        heartbeat interval unless ``force``."""
        now = time.monotonic()
        self.none_running = False
        if not force and now - self._last_check < float(self.storage.heartbeat_interval or 0):
            return 0
        self._last_check = now
        recovered = 0
        silent_now: dict[int, float] = {}
        active = self.ledger.active_studies()
        self.none_running = not active
        for name, incarnation, spec in active:
            study = self.study(name, incarnation)
            study_id = study_id_of(study)
            beats = running_heartbeats(self.storage, study_id, unfinished_trial_ids(study))
            stale = set(beats.stale)
            for trial_id in beats.silent:
                first_seen = self._silent_since.get(trial_id, now)
                silent_now[trial_id] = first_seen
                if now - first_seen > self.grace_period:
                    stale.add(trial_id)
            recovered += sum(self._fail(study, trial_id) for trial_id in sorted(stale))
            settle(self.ledger, study, spec, grace_period=self.grace_period)
        self._silent_since = silent_now
        return recovered

    def _fail(self, study: optuna.Study, trial_id: int) -> bool:
        # read while the trial still runs: no reclaim can free its unit before it is failed
        reclaims = self.ledger.reclaims(study.study_name)
        if reclaims is None:
            return False  # the study is gone
        try:
            for key, value in record.failure_attrs("stale", STALE_REASON).items():
                self.storage.set_trial_user_attr(trial_id, key, value)
            if not self.storage.set_trial_state_values(
                trial_id, state=optuna.trial.TrialState.FAIL
            ):
                return False
        except optuna.exceptions.UpdateFinishedTrialError:
            return False  # another worker got there first
        frozen = self.storage.get_trial(trial_id)
        log.warning("trial %d of %s is stale; requeued", frozen.number, study.study_name)
        requeue(study, frozen, STALE_REASON)
        self.ledger.release(study.study_name, reclaims)
        return True
