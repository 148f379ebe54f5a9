"""The study lifecycle and the budget ledger, as the worker loop sees them (SQL)."""

from __future__ import annotations

import logging
import random
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import Engine, and_, case, func, select, update

from cellsearch.search.study.spec import StudySpec
from cellsearch.search.worker.protocol import ActiveStudy, Claim, Finished
from cellsearch.service.store.db import connection_scope
from cellsearch.service.store.tables import StudyRecord, study_incarnation, utcnow
from cellsearch.service.workers.wakeup import notify_work

log = logging.getLogger(__name__)
_CLAIM_ATTEMPTS = 5


try:
    import fcntl
except ImportError:  # not POSIX: SQLite workers of one process only
    fcntl = None  # type: ignore[assignment]

DEAL_LOCK_CLASS = 0x6373646C  # the advisory-lock class of deal picks ("csdl")
_DEAL_LOCK_FIRST_WAIT, _DEAL_LOCK_MAX_WAIT = 0.002, 0.05  # seconds between tries
_JITTER = random.Random()  # its own: the global one is a trial's, checkpointed
_LOCAL_DEAL_LOCK = threading.Lock()


class SqlStudyLedger:
    """:class:`cellsearch.search.worker.protocol.StudyLedger` over the service's tables.

    A claim is one conditional ``UPDATE ... SET claimed = claimed + 1 WHERE claimed <
    n_trials + reevaluations`` (atomic on SQLite and PostgreSQL), so no number of
    concurrent workers can take more units than the budget holds. The hot paths use
    Core statements (an ORM session costs several times more per statement than the
    statement itself), each committing by itself: every change here is one statement,
    atomic alone, and a transaction around it would add two round trips.
    """

    def __init__(self, engine: Engine, *, grace_period: float) -> None:
        self.engine = engine
        self.grace_period = grace_period
        self._specs: dict[str, StudySpec] = {}  # by incarnation, most recent last

    def active_studies(self) -> list[ActiveStudy]:
        query = select(
            StudyRecord.name, StudyRecord.id, StudyRecord.created_at, StudyRecord.spec
        ).where(StudyRecord.status == "running")
        with connection_scope(self.engine, autocommit=True) as conn:
            rows = conn.execute(query).all()
        return [
            ActiveStudy(name, incarnation, self._spec(incarnation, spec))
            for name, i, created, spec in rows
            for incarnation in [study_incarnation(i, created)]
        ]

    def claim(self) -> Claim | None:
        budget = StudyRecord.n_trials + StudyRecord.reevaluations
        runnable = (StudyRecord.status == "running", StudyRecord.claimed < budget)
        fresh_claim = and_(
            StudyRecord.claimed == StudyRecord.issued, StudyRecord.reevaluation_base.is_(None)
        )
        candidate = (
            select(StudyRecord.id).where(*runnable).order_by(StudyRecord.id).limit(1)
        ).scalar_subquery()
        statement = (
            update(StudyRecord)
            .where(StudyRecord.id == candidate, *runnable)
            .values(
                claimed=StudyRecord.claimed + 1,
                issued=StudyRecord.issued + 1,
                # a fresh claim hands out its index as its deal (the old values on the right)
                dealt=case((fresh_claim, StudyRecord.issued + 1), else_=StudyRecord.dealt),
                last_claim_at=utcnow(),
            )
            .returning(
                StudyRecord.name,
                StudyRecord.spec,
                StudyRecord.claimed,
                StudyRecord.id,
                StudyRecord.created_at,
                StudyRecord.reclaims,
                StudyRecord.issued,
                StudyRecord.reevaluation_base,
            )
        )
        for _ in range(_CLAIM_ATTEMPTS):
            with connection_scope(self.engine, autocommit=True) as conn:
                row = conn.execute(statement).first()
                if row is None and conn.scalar(select(candidate)) is None:
                    return None  # nothing runnable (not a lost race)
            if row is not None:  # another worker may have taken the last unit: retry
                name, spec, claimed, record_id, created_at, reclaims, issued, base = row
                incarnation = study_incarnation(record_id, created_at)
                spec = self._spec(incarnation, spec)
                ticket = None if base is None else issued - 1 - base
                fresh = base is None and claimed == issued  # nothing ever given back
                return Claim(name, spec, claimed - 1, incarnation, reclaims, ticket, fresh)
        return None

    def _spec(self, incarnation: str, stored: dict[str, Any]) -> StudySpec:
        """The validated spec, validated once per study (a spec never changes)."""
        spec = self._specs.pop(incarnation, None) or StudySpec.model_validate(stored)
        self._specs[incarnation] = spec
        while len(self._specs) > 16:
            del self._specs[next(iter(self._specs))]
        return spec

    def release(self, study_name: str, reclaims: int) -> None:
        """Give one unit back, unless a reclaim (which already freed it) came in between;
        idle workers hear of it (:func:`~.wakeup.notify_work`)."""
        with connection_scope(self.engine, autocommit=True) as conn:
            released = conn.execute(
                update(StudyRecord)
                .where(StudyRecord.name == study_name)
                .where(StudyRecord.claimed > 0, StudyRecord.reclaims == reclaims)
                .values(claimed=StudyRecord.claimed - 1)
            ).rowcount
            if released:
                notify_work(conn, study_name)

    def new_deal(self, study_name: str) -> int | None:
        """The next deal of the study's counter, handed out in one statement, or ``None``
        when every deal was handed out (or the study keeps no counter)."""
        statement = (
            update(StudyRecord)
            .where(
                StudyRecord.name == study_name,
                StudyRecord.dealt < StudyRecord.n_trials,
                StudyRecord.reevaluation_base.is_(None),
            )
            .values(dealt=StudyRecord.dealt + 1)
            .returning(StudyRecord.dealt)
        )
        with connection_scope(self.engine, autocommit=True) as conn:
            dealt = conn.scalar(statement)
        return None if dealt is None else dealt - 1

    def reclaims(self, study_name: str) -> int | None:
        with connection_scope(self.engine, autocommit=True) as conn:
            return conn.scalar(select(StudyRecord.reclaims).where(StudyRecord.name == study_name))

    def status(self, study_name: str) -> str | None:
        with connection_scope(self.engine, autocommit=True) as conn:
            return conn.scalar(select(StudyRecord.status).where(StudyRecord.name == study_name))

    @contextmanager
    def deal_lock(self, study_name: str) -> Iterator[None]:
        """One worker of the study at a time between here and the end of the block.

        PostgreSQL: a transaction-level advisory lock, held by a transaction that stays
        open for the block (so it holds through PgBouncer in transaction mode too), and
        tried again after a short, growing wait while another holds it. SQLite
        (one host, one writer): an exclusive ``flock`` on a file beside the database, one
        for all its studies.
        """
        key = zlib.crc32(study_name.encode()) - (1 << 31)  # a signed 32-bit key
        if self.engine.dialect.name == "postgresql":
            # Tried, not waited for: a waiter holds no server connection. Behind a pooler
            # with fewer server connections than workers, waiters blocked in the lock
            # would hold them all while the holder waits for one to record its deal.
            delay = _DEAL_LOCK_FIRST_WAIT
            while True:
                with connection_scope(self.engine) as conn:
                    try_lock = func.pg_try_advisory_xact_lock(DEAL_LOCK_CLASS, key)
                    if conn.scalar(select(try_lock)):
                        yield
                        return
                time.sleep(delay * _JITTER.uniform(0.5, 1.5))
                delay = min(2 * delay, _DEAL_LOCK_MAX_WAIT)
        database = self.engine.url.database
        if not database or database == ":memory:" or fcntl is None:
            with _LOCAL_DEAL_LOCK:  # one process: its threads
                yield
            return
        with open(f"{database}.deal-lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def settle(self, study_name: str, count_finished: Callable[[], Finished | None]) -> None:
        """Complete a study whose units are all used; reclaim units lost to a crash.

        A re-evaluating study whose search units are all used by finished trials is not
        completed: its re-evaluation units join the budget (once: the change applies only
        while ``reevaluation_base`` is NULL), and it completes when those are used too.

        Acts only when no trial is running. A unit can be lost when a worker dies
        between claiming it and asking Optuna for the trial, or when giving back the unit
        of a requeued trial fails; ``claimed`` is set back to the finished count once the
        last claim is older than the grace period (waiting trials hold no unit).

        A reclaim and a release must not both free the unit of one requeued trial (the
        reclaim counts it free as soon as the trial is failed, before its worker releases
        it), and two reclaims from one stale reading must not both apply. Every reclaim
        bumps ``reclaims`` and applies only if ``claimed`` and ``reclaims`` are still what
        it read; a release applies only if ``reclaims`` is what its worker read while the
        trial was still running (no reclaim can happen then).
        """
        ledger = select(
            StudyRecord.status,
            StudyRecord.claimed,
            StudyRecord.n_trials,
            StudyRecord.last_claim_at,
            StudyRecord.reclaims,
            StudyRecord.reevaluations,
            StudyRecord.reevaluation_base,
            StudyRecord.issued,
        ).where(StudyRecord.name == study_name)
        with connection_scope(self.engine, autocommit=True) as conn:
            record = conn.execute(ledger).first()
        if record is None or record.status not in ("running", "paused"):
            return
        budget = record.n_trials + record.reevaluations
        if record.claimed < budget:
            return
        progress = count_finished()  # outside a transaction: SQLite must not hold a lock
        if progress is None:
            return
        finished = progress.counted
        change = update(StudyRecord).where(StudyRecord.name == study_name)
        with connection_scope(self.engine, autocommit=True) as conn:
            if (
                finished >= budget
                and record.reevaluation_base is None
                and progress.reevaluation_jobs
            ):
                log.info("study %s: search done; %d re-evaluation trials join the budget",
                         study_name, progress.reevaluation_jobs)  # fmt: skip
                conn.execute(
                    change.where(StudyRecord.reevaluation_base.is_(None)).values(
                        reevaluations=progress.reevaluation_jobs,
                        reevaluation_base=StudyRecord.issued,
                    )
                )
                notify_work(conn, study_name)
                return
            if finished >= budget:
                conn.execute(
                    change.where(StudyRecord.status.in_(("running", "paused"))).values(
                        status="completed"
                    )
                )
                return
            last = record.last_claim_at
            if last is not None and last.tzinfo is None:  # SQLite drops the zone
                last = last.replace(tzinfo=UTC)
            if last is None or utcnow() - last > timedelta(seconds=self.grace_period):
                log.warning(
                    "study %s: %d units claimed but %d trials finished; reclaiming",
                    study_name, record.claimed, finished,
                )  # fmt: skip
                conn.execute(
                    change.where(
                        StudyRecord.claimed == record.claimed,
                        StudyRecord.reclaims == record.reclaims,
                    ).values(claimed=finished, reclaims=StudyRecord.reclaims + 1)
                )
                notify_work(conn, study_name)
