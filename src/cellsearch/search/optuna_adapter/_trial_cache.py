""":class:`TrialCache`: Optuna's trial cache, re-reading for each reader only what it needs.

Optuna keeps a study's trials in a cache (``_CachedStorage``) in front of its RDB
storage. A finished trial never changes, so it is read once; but every read of the
study's trials first reads again every trial the cache has seen unfinished, whatever
the reader asked for. With ``N`` workers on one study that is about ``N`` running trials
read whole (their parameters, reports and attributes) on every read; the readers are
many (the pruner each epoch, the claim's look for a waiting trial), and most of them
ask for finished or waiting trials only. At 256 workers one such read took 22 ms of a
worker's CPU and 3 ms of the server's: quadratic in the workers, the first limit past a
few hundred (``benchmarks/cache_refresh.py``, ``benchmarks/WORKERS.md``).

Here a reader that asks for no running trial (``states`` without ``RUNNING``) re-reads
only the trials that could be in its answer and are not in the cache for good: of the
trials the cache holds as unfinished, those now finished or in a state it asked for;
and every trial newer than the cache knows. One query of a few rows (and one for the
child rows of the trials it reads, when it reads any). A reader that asks
for running trials (or for all) gets Optuna's own refresh, so it sees every running
trial as it is now. The cache's bookkeeping after either read is Optuna's: a trial read
finished is kept for good, and one read unfinished is read again.

An answer holds what Optuna's would hold: the finished trials (the cache's, complete as
Optuna's are), and of the unfinished the ones read anew in this call, in the states
asked for. A running trial's copy in the cache may be older than the database (it was
not read again); it is never in such an answer, and a reader of running trials reads
it anew.
"""

from __future__ import annotations

import copy
from collections.abc import Container

import optuna
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.optuna_adapter._storage import AdapterStorage
from cellsearch.search.optuna_adapter._writes import _CachedStorage

_NOT_RUNNING: list[TrialState] = [s for s in TrialState if s != TrialState.RUNNING]


class TrialCache(_CachedStorage):
    """Optuna's trial cache around an :class:`AdapterStorage`, a read of no running trial
    refreshing only what it needs (see the module)."""

    def __init__(self, backend: AdapterStorage) -> None:
        super().__init__(backend)
        self._adapter = backend

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        if states is None or TrialState.RUNNING in states or not self._narrow(study_id):
            return super().get_all_trials(study_id, deepcopy=deepcopy, states=states)
        with self._lock:
            trials = self._changed_answer(study_id, [s for s in TrialState if s in states])
            return copy.deepcopy(trials) if deepcopy else trials

    def unfinished_ids(self, study_id: int) -> list[int]:
        """The ids of the study's trials that were unfinished (running or waiting) when
        read: the trials that finished since the last read are read, no other (the
        first read of a study is the whole study)."""
        if self._narrow(study_id):
            with self._lock:
                self._read_changed(study_id, [])
                return sorted(self._studies[study_id].unfinished_trial_ids)
        super().get_all_trials(study_id, deepcopy=False)  # Optuna's refresh
        with self._lock:
            return sorted(self._studies[study_id].unfinished_trial_ids)

    def settled(self, study_id: int) -> list[FrozenTrial] | None:
        """Every trial of the study if none is running, else None (see
        :func:`settled_trials`): one read of what changed, no running trial read."""
        if not self._narrow(study_id):
            return _unless_running(super().get_all_trials(study_id, deepcopy=False))
        with self._lock:
            trials = self._changed_answer(study_id, _NOT_RUNNING)
            waiting = {t._trial_id for t in trials if not t.state.is_finished()}
            # unfinished and not read now as waiting: running (or new, in no state wanted)
            if self._studies[study_id].unfinished_trial_ids - waiting:
                return None
            return trials

    def _narrow(self, study_id: int) -> bool:
        """Whether a read may re-read only what changed: the cache has read the study
        (a first read is the whole study anyway) and the adapter's SQL runs here."""
        return study_id in self._studies and self._adapter._hot()

    def _changed_answer(self, study_id: int, wanted: list[TrialState]) -> list[FrozenTrial]:
        """The study's trials in a ``wanted`` state (none running), in number order, after
        reading what changed (:meth:`_read_changed`). Under the lock."""
        fresh = self._read_changed(study_id, wanted)
        return [
            trial
            for number, trial in sorted(self._studies[study_id].trials.items())
            if trial.state in wanted and (trial.state.is_finished() or number in fresh)
        ]

    def _read_changed(self, study_id: int, wanted: list[TrialState]) -> set[int]:
        """Read the study's trials that finished or are now in a ``wanted`` state (of
        those the cache holds unfinished, and of those new to it); keep the books as
        Optuna's refresh does, a new trial in a state not wanted kept among the
        unfinished unread. Returns the numbers of the trials read. Under the lock."""
        study = self._studies[study_id]
        read, others = self._adapter._changed_trials(
            study_id, study.unfinished_trial_ids, study.last_finished_trial_id, wanted
        )
        self._add_trials_to_cache(study_id, read)
        for trial in read:
            if trial.state.is_finished():
                study.last_finished_trial_id = max(study.last_finished_trial_id, trial._trial_id)
                study.unfinished_trial_ids.discard(trial._trial_id)
            else:
                study.unfinished_trial_ids.add(trial._trial_id)
        study.unfinished_trial_ids.update(others)  # new, unfinished: read again next time
        return {trial.number for trial in read}


def unfinished_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of ``study``'s trials that may be running: on a :class:`TrialCache`, the
    trials it holds unfinished after reading those that changed (none read whole again);
    on any other storage, the running trials, read."""
    storage = study._storage
    if isinstance(storage, TrialCache):
        return storage.unfinished_ids(study._study_id)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return [trial._trial_id for trial in running]


def settled_trials(study: optuna.Study) -> list[FrozenTrial] | None:
    """Every trial of ``study`` (not copied) when none is running, else None: on a
    :class:`TrialCache` the trials that changed are read, and no running one (its id in
    the books tells); on any other storage, every trial."""
    storage = study._storage
    if isinstance(storage, TrialCache):
        return storage.settled(study._study_id)
    return _unless_running(study.get_trials(deepcopy=False))


def _unless_running(trials: list[FrozenTrial]) -> list[FrozenTrial] | None:
    return None if any(t.state == TrialState.RUNNING for t in trials) else trials


def load_study(name: str, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """``optuna.load_study(study_name=name, storage=storage)``, an
    :class:`AdapterStorage` behind a :class:`TrialCache` instead of Optuna's own cache."""
    if isinstance(storage, AdapterStorage):
        storage = TrialCache(storage)
    return optuna.load_study(study_name=name, storage=storage)
