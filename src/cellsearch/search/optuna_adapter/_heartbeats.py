"""Which running trials lost their worker: stale heartbeats, and trials that never beat.

Optuna's RDB storage records a heartbeat row per running trial and calls a trial stale
when its last heartbeat, by the database's clock, is older than the grace period
(``RDBStorage._get_stale_trial_ids``, which Optuna runs only inside ``study.optimize``;
cellsearch's workers use ask and tell). A trial that never wrote a heartbeat has no row,
so that check never sees it: the worker times those itself
(:class:`cellsearch.search.worker.recovery.StaleTrials`).

:func:`running_heartbeats` answers both questions in one query, for the running trials
the caller names. Optuna's check (and an earlier form of this one) selected the study's
running trials by its ``study_id`` index and a filter on their state: a pass over every
trial of the study, 7-10 ms at 100,000 trials, which every worker paid at every heartbeat
interval. The caller knows the trials that may be running from its trial cache
(:func:`~cellsearch.search.optuna_adapter.unfinished_trial_ids`), so here the server
looks up only those, by primary key, and keeps the ones still running.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState
from sqlalchemy import func, select

from cellsearch.search.optuna_adapter._frozen import among
from cellsearch.search.optuna_adapter._tables import HEARTBEATS, TRIALS


@dataclass(frozen=True)
class Heartbeats:
    """Of the running trials asked about: those whose last heartbeat is older than the
    storage's grace period (``stale``, by the database's clock, as Optuna's own check
    finds them), and those that never recorded one (``silent``)."""

    stale: list[int]
    silent: set[int]


def running_heartbeats(
    storage: optuna.storages.RDBStorage, study_id: int, running: Collection[int]
) -> Heartbeats:
    """The stale and the silent among ``running`` (trial ids) that still run in the study.

    ``running``: the study's trials that may be running, as the caller last read them
    (unfinished ones; a trial that started since cannot be stale yet). There is no
    fallback answer: a query Optuna's schema no longer supports raises.
    """
    if not running:
        return Heartbeats([], set())
    t, h = TRIALS.c, HEARTBEATS.c
    query = (
        select(t.trial_id, h.heartbeat, func.now())
        .select_from(TRIALS.outerjoin(HEARTBEATS, h.trial_id == t.trial_id))
        .where(among(storage.engine.dialect.name, t.trial_id, list(running)))
        .where(t.study_id == study_id, t.state == TrialState.RUNNING)
        .order_by(t.trial_id)
    )
    with storage.engine.connect() as conn:
        rows = conn.execute(query).all()
    grace = dt.timedelta(seconds=_grace_period(storage))
    stale, silent = [], set()
    for trial_id, beat, now in rows:
        if beat is None:
            silent.add(trial_id)
        elif now.replace(tzinfo=None) - beat > grace:  # naive, as Optuna compares them
            stale.append(trial_id)
    return Heartbeats(stale, silent)


def _grace_period(storage: optuna.storages.RDBStorage) -> float:
    """The storage's grace period; Optuna's default: two heartbeat intervals."""
    if storage.grace_period is not None:
        return float(storage.grace_period)
    return 2.0 * float(storage.heartbeat_interval or 0)
