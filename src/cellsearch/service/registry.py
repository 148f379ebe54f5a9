"""The worker registry: which workers are alive, where, and on what (SQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cellsearch.search.worker.protocol import WorkerInfo
from cellsearch.service.db import connection_scope
from cellsearch.service.tables import WorkerRecord, utcnow


class SqlWorkerRegistry:
    """:class:`cellsearch.search.worker.protocol.WorkerRegistry` over the service's tables.

    A worker is live while its last beat is within the grace period (a killed worker's row
    stays until then).
    """

    def __init__(self, engine: Engine, *, grace_period: float) -> None:
        self.engine = engine
        self.grace_period = grace_period

    def beat(self, info: WorkerInfo) -> int:
        """Record the worker's heartbeat; return how many live workers share its machine.

        Live: a heartbeat within the grace period (a killed worker's row stays until then).
        """
        now = utcnow()
        values = {
            "host": info.host,
            "pid": info.pid,
            "device": info.device,
            "machine": info.machine,
            "torch_threads": info.torch_threads,
            "study_name": info.study_name,
            "trial_number": info.trial_number,
            "last_heartbeat": now,
        }
        with connection_scope(self.engine) as conn:
            updated = conn.execute(
                update(WorkerRecord)
                .where(WorkerRecord.worker_id == info.worker_id)
                .values(**values)
            )
            if updated.rowcount:
                return self._neighbours(conn, info.machine, now)
        try:
            with connection_scope(self.engine) as conn:
                conn.execute(
                    insert(WorkerRecord).values(worker_id=info.worker_id, started_at=now, **values)
                )
                return self._neighbours(conn, info.machine, now)
        except IntegrityError:  # the heartbeat thread inserted it first
            return 1

    def _neighbours(self, conn: Connection, machine: str, now: datetime) -> int:
        live = now - timedelta(seconds=self.grace_period)
        count = conn.scalar(
            select(func.count())
            .select_from(WorkerRecord)
            .where(WorkerRecord.machine == machine, WorkerRecord.last_heartbeat > live)
        )
        return max(1, int(count or 0))

    def retire(self, worker_id: str) -> None:
        with connection_scope(self.engine) as conn:
            conn.execute(delete(WorkerRecord).where(WorkerRecord.worker_id == worker_id))
