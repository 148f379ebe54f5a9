"""The worker registry: which workers are alive, where, and on what (SQL).

Listing reads one page (:func:`worker_page`), so the API answers alike with five
workers or five thousand; a row is forgotten :data:`FORGET_AFTER` after its worker's last
beat (a killed worker never retires its row itself), whenever another worker starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, Row, Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cellsearch.search.errors import FieldError
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.worker.protocol import WorkerInfo
from cellsearch.service.store.db import connection_scope
from cellsearch.service.store.tables import WorkerRecord, utcnow

FORGET_AFTER = timedelta(hours=1)  # a dead worker's row stays this long after its last beat


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
        beat = update(WorkerRecord).where(WorkerRecord.worker_id == info.worker_id).values(**values)
        if self.engine.dialect.name == "postgresql":
            # one statement, its own transaction: the beat and the count of the others
            # (one round trip, where a transaction takes four; about three beats a trial
            # at 256 workers)
            beaten = beat.returning(WorkerRecord.worker_id).cte("beat")
            others = self._live(info.machine, now).where(WorkerRecord.worker_id != info.worker_id)
            count = select(select(func.count()).select_from(beaten).scalar_subquery(),
                           others.scalar_subquery())  # fmt: skip
            with connection_scope(self.engine, autocommit=True) as conn:
                updated, neighbours = conn.execute(count).one()
            if updated:
                return int(neighbours) + 1  # and itself
        else:
            # one transaction (not two autocommitted statements): an idle worker's beats
            # are most of the transactions it makes (benchmarks/WORKERS.md, "Idle workers")
            with connection_scope(self.engine) as conn:
                if conn.execute(beat).rowcount:
                    return self._neighbours(conn, info.machine, now)
        try:
            with connection_scope(self.engine) as conn:
                conn.execute(  # a worker starts: forget the long-dead ones
                    delete(WorkerRecord).where(WorkerRecord.last_heartbeat < now - FORGET_AFTER)
                )
                conn.execute(
                    insert(WorkerRecord).values(worker_id=info.worker_id, started_at=now, **values)
                )
                return self._neighbours(conn, info.machine, now)
        except IntegrityError:  # the heartbeat thread inserted it first
            return 1

    def _live(self, machine: str, now: datetime) -> Select[int]:
        """The count of the live workers on ``machine``."""
        live = now - timedelta(seconds=self.grace_period)
        return (
            select(func.count())
            .select_from(WorkerRecord)
            .where(WorkerRecord.machine == machine, WorkerRecord.last_heartbeat > live)
        )

    def _neighbours(self, conn: Connection, machine: str, now: datetime) -> int:
        return max(1, int(conn.scalar(self._live(machine, now)) or 0))

    def retire(self, worker_id: str) -> None:
        with connection_scope(self.engine) as conn:
            conn.execute(delete(WorkerRecord).where(WorkerRecord.worker_id == worker_id))


def worker_page(
    engine: Engine, *, offset: int, limit: int, live: bool | None, grace_period: float
) -> tuple[Sequence[Row[tuple[object, ...]]], int]:
    """A page of the registry's rows, oldest worker first, and how many rows match.

    Args:
        live: True: only workers whose last beat is within the grace period; False: only
            the others; None: every row.
    """
    matching = []
    if live is not None:
        fresh = WorkerRecord.last_heartbeat > utcnow() - timedelta(seconds=grace_period)
        matching.append(fresh if live else ~fresh)
    query = (
        select(*WorkerRecord.__table__.columns)
        .where(*matching)
        .order_by(WorkerRecord.started_at, WorkerRecord.worker_id)
        .offset(offset)
        .limit(limit)
    )
    with connection_scope(engine) as conn:
        total = conn.scalar(select(func.count()).select_from(WorkerRecord).where(*matching))
        return conn.execute(query).all(), int(total or 0)


def live_devices(engine: Engine, *, grace_period: float) -> list[str]:
    """The devices of the workers whose last beat is within the grace period."""
    live = utcnow() - timedelta(seconds=grace_period)
    with connection_scope(engine) as conn:
        return list(
            conn.scalars(select(WorkerRecord.device).where(WorkerRecord.last_heartbeat > live))
        )


def check_precision(engine: Engine, spec: StudySpec, *, grace_period: float) -> list[FieldError]:
    """An error when the spec asks for bf16 and the live workers all train on CPU.

    With no live worker the pool is unknown (workers may start later), so nothing is
    refused; a CPU worker that runs a bf16 study trains in fp32 and notes it on the trial.
    """
    if spec.precision != "bf16":
        return []
    devices = live_devices(engine, grace_period=grace_period)
    if not devices or any(d.startswith("cuda") for d in devices):
        return []
    return [
        FieldError(
            ("precision",),
            f"no live worker can train in bf16: the {len(devices)} live worker(s) train on "
            "CPU; start a worker with --device cuda, or ask for fp32",
            "unsupported",
        )
    ]
