"""The SQL side of the worker loop: lifecycle checks and the budget ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, timedelta

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from cellsearch.search.spec import StudySpec
from cellsearch.search.worker import Claim, WorkerInfo
from cellsearch.service.datasets import dataset_content
from cellsearch.service.db import session_scope
from cellsearch.service.tables import StudyRecord, WorkerRecord, utcnow

log = logging.getLogger(__name__)
_CLAIM_ATTEMPTS = 5


class SqlStudyQueue:
    """:class:`cellsearch.search.worker.StudyQueue` over the service's tables.

    A claim is one conditional ``UPDATE ... SET claimed = claimed + 1 WHERE claimed <
    n_trials`` (atomic on SQLite and PostgreSQL), so no number of concurrent workers
    can take more units than the budget holds.
    """

    def __init__(self, engine: Engine, *, grace_period: float) -> None:
        self.engine = engine
        self.grace_period = grace_period

    def active_studies(self) -> list[str]:
        with session_scope(self.engine) as session:
            rows = session.scalars(select(StudyRecord.name).where(StudyRecord.status == "running"))
            return list(rows)

    def claim(self) -> Claim | None:
        for _ in range(_CLAIM_ATTEMPTS):
            with session_scope(self.engine) as session:
                candidate = session.scalars(
                    select(StudyRecord.id)
                    .where(StudyRecord.status == "running")
                    .where(StudyRecord.claimed < StudyRecord.n_trials)
                    .order_by(StudyRecord.id)
                    .limit(1)
                ).first()
                if candidate is None:
                    return None
                row = session.execute(
                    update(StudyRecord)
                    .where(StudyRecord.id == candidate)
                    .where(StudyRecord.status == "running")
                    .where(StudyRecord.claimed < StudyRecord.n_trials)
                    .values(claimed=StudyRecord.claimed + 1, last_claim_at=utcnow())
                    .returning(StudyRecord.name, StudyRecord.spec, StudyRecord.claimed)
                ).first()
            if row is not None:  # another worker may have taken the last unit: retry
                name, spec, claimed = row
                return Claim(name, StudySpec.model_validate(spec), claimed - 1)
        return None

    def release(self, study_name: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(StudyRecord)
                .where(StudyRecord.name == study_name)
                .where(StudyRecord.claimed > 0)
                .values(claimed=StudyRecord.claimed - 1)
            )

    def status(self, study_name: str) -> str | None:
        with session_scope(self.engine) as session:
            return session.scalars(
                select(StudyRecord.status).where(StudyRecord.name == study_name)
            ).first()

    def settle(self, study_name: str, count_finished: Callable[[], int]) -> None:
        """Complete a study whose units are all used; reclaim units lost to a crash.

        Called when the study has no running trial. A unit can be lost when a worker dies
        between claiming it and asking Optuna for the trial, or when giving back the unit
        of a requeued trial fails; ``claimed`` is set back to the finished count once the
        last claim is older than the grace period (waiting trials hold no unit).
        """
        with session_scope(self.engine) as session:
            record = StudyRecord.find(session, study_name)
        if record is None or record.status not in ("running", "paused"):
            return
        if record.claimed < record.n_trials:
            return
        finished = count_finished()  # outside a transaction: SQLite must not hold a lock
        ledger = update(StudyRecord).where(StudyRecord.name == study_name)
        with session_scope(self.engine) as session:
            if finished >= record.n_trials:
                session.execute(
                    ledger.where(StudyRecord.status.in_(("running", "paused"))).values(
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
                session.execute(
                    ledger.where(StudyRecord.claimed == record.claimed).values(claimed=finished)
                )

    def dataset(self, dataset_id: str) -> tuple[bytes, str]:
        return dataset_content(engine=self.engine, dataset_id=dataset_id)

    def beat(self, info: WorkerInfo) -> None:
        values = {
            "host": info.host,
            "pid": info.pid,
            "device": info.device,
            "study_name": info.study_name,
            "trial_number": info.trial_number,
            "last_heartbeat": utcnow(),
        }
        with session_scope(self.engine) as session:
            updated = session.execute(
                update(WorkerRecord)
                .where(WorkerRecord.worker_id == info.worker_id)
                .values(**values)
            )
            if updated.rowcount:  # type: ignore[attr-defined]
                return
        try:
            with session_scope(self.engine) as session:
                session.add(WorkerRecord(worker_id=info.worker_id, **values))
        except Exception as exc:  # the heartbeat thread inserted it first
            if not isinstance(exc.__cause__, IntegrityError):
                raise

    def retire(self, worker_id: str) -> None:
        with session_scope(self.engine) as session:
            session.execute(delete(WorkerRecord).where(WorkerRecord.worker_id == worker_id))
