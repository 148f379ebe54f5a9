"""Taking a search trial, and the deal it runs, so that per-cell counts come out as dealt.

Under balanced allocation the ``n_trials`` of a study are *deals* ``0 .. n_trials - 1``:
deal ``d`` runs cell type :func:`~cellsearch.search.study.allocation.balanced_cell` of
``d``, with the sampler seed and the kind of draw of ``d``. Every search trial records its
deal (:attr:`~cellsearch.search.record.Attr.DEAL`) as soon as it is taken, and a requeued
copy keeps it (:func:`~cellsearch.search.record.requeue_attrs`). A deal is *held* by the
trials that will use it: running and waiting ones, counted finished ones, and a trial
failed to be requeued whose copy is not enqueued yet (:func:`~.recovery.requeue_pending`).

A claim of the ledger comes with an index (the units in use before it). A worker first
takes a waiting trial, if any (a requeued copy keeps its deal). Otherwise its trial takes
a deal nobody holds, and a new trial is made with it in one transaction:

- a *fresh* claim (no unit of the study was ever given back: every claim so far took its
  own index) deals its index, which is every claim of a study nothing went wrong with;
- any other takes the next deal of the ledger's counter
  (:meth:`~.protocol.StudyLedger.new_deal`). The ledger counts the deals handed out (a
  fresh claim hands out its index as it is claimed), and a deal past the count was never
  handed out, so no trial holds it: no lock, no read of the study.

A deal handed out but never used is left over when its worker died between its claim and
its trial (the ledger reclaims the unit), or when a fresh claim took a waiting trial
instead. Once the counter is spent, the claims that such units come back as take the
smallest deal nobody holds, which is a lost one. Such a claim picks and records its deal
under the ledger's deal lock, so two workers repairing at once see each other's deal; it
then checks that no trial with a lower number holds the same deal (a fresh take of a
waiting copy without a deal, not yet recorded, which no lock orders), taking the next
free one if one does. A study made before the counter was kept picks the deal of every
claim that is not fresh this way.
So a study ends with each deal used by exactly one counted trial, whatever failed and
whenever.

A trial made before deals were recorded holds none; its study is dealt by claim index,
as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search import record
from cellsearch.search.optuna_adapter import (
    new_trial,
    pop_waiting_trial_id,
    record_attrs,
    resampled,
    trial_of,
)
from cellsearch.search.study.sampling import (
    dealt_cell,
    draw_attrs,
    make_pruner,
    make_sampler,
    warm_attrs,
)
from cellsearch.search.study.seeding import seeds_of
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.worker.recovery import requeue_pending

log = logging.getLogger(__name__)
_REPAIRS = 8  # at most this many re-picks of a deal taken by a racing worker


def held_deals(trials: Iterable[FrozenTrial], grace_period: float) -> dict[int, list[int]]:
    """Each held deal and the numbers of the trials holding it (see the module docstring)."""
    trials = list(trials)
    held: dict[int, list[int]] = {}
    for trial in trials:
        deal = trial.user_attrs.get(record.Attr.DEAL)
        if deal is None or not _holds(trial, trials, grace_period):
            continue
        held.setdefault(int(deal), []).append(trial.number)
    return held


def _holds(trial: FrozenTrial, trials: Sequence[FrozenTrial], grace_period: float) -> bool:
    if trial.state in (TrialState.RUNNING, TrialState.WAITING) or record.is_counted(trial):
        return True
    return trial.state == TrialState.FAIL and requeue_pending([trial, *_copies(trial, trials)],
                                                               grace_period)  # fmt: skip


def _copies(trial: FrozenTrial, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.user_attrs.get(record.Attr.RETRY_OF) == trial.number]


def free_deal(held: dict[int, list[int]], index: int, *, exclude: Iterable[int] = ()) -> int:
    """The deal of a new trial with claim ``index``: the index itself while nobody holds it,
    else the smallest deal nobody holds (nor is in ``exclude``)."""
    taken = set(held) | set(exclude)
    if index not in taken:
        return index
    deal = 0
    while deal in taken:
        deal += 1
    return deal


@dataclass(frozen=True)
class Taken:
    """A search trial just taken, armed with the sampler of ``deal``; ``recorded``: the
    trial carried its deal already (a requeued copy), else :func:`record_deal` records it;
    ``own``: the deal is the take's own (a fresh claim's index or the ledger counter's),
    recorded as it is, without the deal lock."""

    trial: optuna.Trial
    deal: int
    recorded: bool
    own: bool = False


def take_search_trial(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    spec: StudySpec,
    index: int,
    *,
    grace_period: float,
    fresh: bool = False,
    new_deal: Callable[[], int | None] = lambda: None,
) -> Taken:
    """The trial of a search claim with ``index``, armed with its deal's sampler and the
    study's pruner (:func:`record_deal` then records the deal).

    A waiting trial (a requeued copy) is taken first and keeps the deal it carries; a copy
    of a trial that died before recording one is dealt as a new trial is. A ``fresh``
    claim (no unit of the study was ever given back: every claim took its own index)
    deals its index; any other takes ``new_deal()``, the next deal of the ledger's counter.
    Either is no trial's deal, so it is taken without reading which deals are held, and a
    new trial is made with the deal's attributes in one transaction (so it is recorded as
    taken, and no other trial can see it without its deal). Only when the counter is
    spent is the deal picked from the deals held (see the module docstring).
    """
    waiting = pop_waiting_trial_id(study)
    if waiting is not None:
        carried = storage.get_trial(waiting).user_attrs.get(record.Attr.DEAL)
        if carried is not None:
            _arm(study, spec, int(carried))
            return Taken(trial_of(study, waiting), int(carried), recorded=True)
    deal = index if fresh else new_deal()
    if deal is not None:
        _arm(study, spec, deal)
        if waiting is None:  # the deal is made with the trial, in one transaction
            return Taken(new_trial(study, deal_attrs(study, spec, deal)), deal, recorded=True)
        # a copy without a deal: record_deal records this one, without the deal lock
        return Taken(trial_of(study, waiting), deal, recorded=False, own=True)
    deal = free_deal(held_deals(study.get_trials(deepcopy=False), grace_period), index)
    _arm(study, spec, deal)
    trial = new_trial(study) if waiting is None else trial_of(study, waiting)
    return Taken(trial, deal, recorded=False)


def record_deal(
    study: optuna.Study,
    spec: StudySpec,
    taken: Taken,
    index: int,
    *,
    grace_period: float,
    lock: Callable[[], AbstractContextManager[None]] = nullcontext,
) -> optuna.Trial:
    """Record the deal of a trial just taken; returns the trial to run (re-made when its
    deal changed).

    A take with a deal of its own records it. Any other take picks its deal again and
    records it under ``lock`` (the ledger's :meth:`~.protocol.StudyLedger.deal_lock`), so
    that of two workers repairing at once the second sees the first's deal: without it,
    a lower-numbered trial that recorded only after a higher one had checked kept the
    same deal (seen under a server restart). A rival the lock cannot order (a fresh take of
    a waiting copy, not yet recorded) is still checked for afterwards (see the module docstring).
    """
    if taken.recorded:
        return taken.trial
    if taken.own:
        _record_deal(taken.trial, spec, taken.deal)
        return taken.trial
    trial, deal = taken.trial, taken.deal
    with lock():
        picked = free_deal(held_deals(study.get_trials(deepcopy=False), grace_period), index)
        _record_deal(trial, spec, picked)
    if picked != deal:
        _arm(study, spec, picked)
        trial = resampled(study, trial)
    if picked == index:
        return trial
    return _repair(study, spec, trial, picked, grace_period)


def _record_deal(trial: optuna.Trial, spec: StudySpec, deal: int) -> None:
    """Record the deal of a trial taken already (:func:`deal_attrs`; a copy keeps its own
    kind of draw and warm start)."""
    copy = record.Attr.RETRY_OF in trial.user_attrs
    record_attrs(trial, deal_attrs(trial.study, spec, deal, copy=copy))


def deal_attrs(
    study: optuna.Study, spec: StudySpec, deal: int, *, copy: bool = False
) -> dict[str, object]:
    """The attributes that record a deal: the deal and its cell type (so that a trial that
    fails before it samples still counts for its cell), and, unless the trial is a
    ``copy``, the kind of draw and the warm start's seeds shown."""
    attrs: dict[str, object] = {record.Attr.DEAL: deal}
    cell = dealt_cell(spec, deal)
    if cell is not None:
        attrs[record.Attr.CELL_TYPE] = cell
    if not copy:
        attrs.update(draw_attrs(spec, deal))
        attrs.update(warm_attrs(spec, deal, seeds_of(study, spec)))
    return attrs


def _repair(
    study: optuna.Study, spec: StudySpec, trial: optuna.Trial, deal: int, grace_period: float
) -> optuna.Trial:
    """Keep ``deal`` unless a trial with a lower number holds it too (a worker repairing at
    the same moment); then take the next free deal, and check again."""
    tried: set[int] = set()
    for _ in range(_REPAIRS):
        held = held_deals(study.get_trials(deepcopy=False), grace_period)
        rivals = [n for n in held.get(deal, []) if n < trial.number]
        if not rivals:
            log.info("study %s: trial %d runs deal %d, lost earlier", study.study_name,
                     trial.number, deal)  # fmt: skip
            return trial
        tried.add(deal)
        deal = free_deal(held, -1, exclude=tried)
        _arm(study, spec, deal)
        _record_deal(trial, spec, deal)
        trial = resampled(study, trial)
    return trial


def _arm(study: optuna.Study, spec: StudySpec, deal: int) -> None:
    study.sampler = make_sampler(spec, deal, seeds_of(study, spec))
    study.pruner = make_pruner(spec)
