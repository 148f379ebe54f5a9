"""The status a study shows: its stored status, or ``queued`` while it waits behind another.

The stored status (``running``, ``paused``, ``cancelled``, ``completed``) is what the
ledger acts on. Workers claim from the oldest running study that has budget left
(:meth:`cellsearch.service.workers.ledger.SqlStudyLedger.claim`), so a younger running study
gets no worker until that one's budget is all claimed. Such a study, with none of its
trials running, is shown as ``queued``: "running" would say that work is being done
on it.

A study that waits for work to be done with no live worker anywhere (none started, or all
dead) carries a note that says so (:func:`waiting_notes`): its status alone would suggest
that a worker will come.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Engine, func, select

from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.workers.roster import live_devices

SHOWN_STATUSES = ("queued", "running", "paused", "cancelled", "completed")
NO_WORKER = (
    "waiting for a worker: none is alive (start one with `cellsearch worker`, "
    "or `cellsearch serve` with local workers)"
)


def head_of_queue(*, engine: Engine) -> int | None:
    """The id of the study workers claim from next, or None when none has budget left."""
    query = select(func.min(StudyRecord.id)).where(
        StudyRecord.status == "running",
        StudyRecord.claimed < StudyRecord.n_trials + StudyRecord.reevaluations,
    )
    with session_scope(engine) as session:
        return session.scalar(query)


def shown_status(record: StudyRecord, *, running_trials: int, head: int | None) -> str:
    """``queued`` for a running study with budget left, no running trial, and an older
    runnable study ahead of it (``head``); otherwise the stored status."""
    waiting = (
        record.status == "running"
        and running_trials == 0
        and record.claimed < record.n_trials + record.reevaluations
        and head is not None
        and head < record.id
    )
    return "queued" if waiting else record.status


def shown_statuses(
    *, engine: Engine, records: Sequence[StudyRecord], running: Mapping[str, int]
) -> dict[str, str]:
    """The shown status of each study, by name (``running``: its running trials)."""
    head = head_of_queue(engine=engine) if any(r.status == "running" for r in records) else None
    return {
        r.name: shown_status(r, running_trials=running.get(r.name, 0), head=head) for r in records
    }


def waiting_notes(
    *,
    engine: Engine,
    records: Sequence[StudyRecord],
    running: Mapping[str, int],
    grace_period: float,
) -> dict[str, str | None]:
    """A note for each study that waits for work with no live worker (:data:`NO_WORKER`),
    by name; None for the others. The live workers are counted (one query) only when a
    study waits: running, budget left, no trial running."""
    waiting = [
        r.name
        for r in records
        if r.status == "running"
        and running.get(r.name, 0) == 0
        and r.claimed < r.n_trials + r.reevaluations
    ]
    alive = bool(waiting) and bool(live_devices(engine, grace_period=grace_period))
    return {r.name: NO_WORKER if r.name in waiting and not alive else None for r in records}
