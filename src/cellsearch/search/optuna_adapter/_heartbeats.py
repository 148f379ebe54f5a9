"""Which running trials lost their worker: Optuna's stale check, and the trials it cannot see.

Optuna's RDB storage records a heartbeat row per running trial and calls a trial stale
when its last heartbeat is older than the grace period (``RDBStorage._get_stale_trial_ids``,
a private method: Optuna runs it only inside ``study.optimize``, and cellsearch's workers
use ask and tell). A trial that never wrote a heartbeat has no row, so that check never
sees it: :func:`running_without_heartbeat` lists those, and the worker times them itself
(:class:`cellsearch.search.worker.recovery.StaleTrials`).
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from sqlalchemy import exists, select

from cellsearch.search.optuna_adapter._tables import HEARTBEATS, TRIALS


def stale_trial_ids(storage: optuna.storages.RDBStorage, study_id: int) -> list[int]:
    """Ids of the study's running trials whose last heartbeat is older than the storage's
    grace period (by the database's clock), as Optuna's own stale check finds them."""
    return list(storage._get_stale_trial_ids(study_id))


def running_without_heartbeat(storage: optuna.storages.RDBStorage, study_id: int) -> set[int]:
    """Ids of the study's running trials that have never recorded a heartbeat.

    Optuna's stale check only sees trials with a heartbeat row, so a worker killed between
    ``ask`` and its trial's first heartbeat would leave the trial running for ever. The
    worker watches these trials itself (see :meth:`cellsearch.search.worker.loop.Worker.
    recover_stale`). There is no fallback answer: a query Optuna's schema no longer
    supports raises.
    """
    t = TRIALS.c
    with storage.engine.connect() as conn:
        rows = conn.scalars(
            select(t.trial_id)
            .where(t.study_id == study_id)
            .where(t.state == TrialState.RUNNING)
            .where(~exists().where(HEARTBEATS.c.trial_id == t.trial_id))
        )
        return set(rows)
