"""What a worker needs from the service, as protocols (so ``search`` needs no service code).

The service's tables hold the study lifecycle, the budget ledger, the worker registry and
uploaded data; a worker reaches them only through a :class:`Backend`: its
:class:`StudyLedger`, its :class:`WorkerRegistry`, a dataset resolver and, where the
database can tell (PostgreSQL's LISTEN/NOTIFY), its :class:`WorkSignal`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import DatasetResolver


@dataclass(frozen=True)
class Claim:
    """One unit of a study's budget, taken by a worker."""

    study_name: str
    spec: StudySpec
    index: int  # 0-based order of the claim within the study
    incarnation: str  # changes when a study is deleted and made again under its name
    reclaims: int = 0  # the ledger's reclaim count when the unit was claimed
    reevaluation: int | None = None  # a re-evaluation claim's ticket (0, 1, ...); None: search
    # no unit of the study was ever given back or reclaimed: every claim so far took its
    # own index, so this one's index is no trial's deal (see cellsearch.search.worker.deals)
    fresh: bool = False


class ActiveStudy(NamedTuple):
    """A study whose status is ``running``."""

    name: str
    incarnation: str
    spec: StudySpec


@dataclass(frozen=True)
class Finished:
    """What a study's finished trials add up to, for the ledger's settle.

    Attributes:
        counted: Trials that used a unit of the budget (search and re-evaluation).
        reevaluation_jobs: Re-evaluation trials the study's finished search calls for (0
            when it does not re-evaluate).
    """

    counted: int
    reevaluation_jobs: int = 0


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker tells the registry on every beat."""

    worker_id: str
    host: str
    pid: int
    device: str
    machine: str = ""  # the kernel instance (see cellsearch.search.worker.cpu.machine_id)
    torch_threads: int | None = None
    study_name: str | None = None
    trial_number: int | None = None


class StudyLedger(Protocol):
    """The study lifecycle and the budget ledger."""

    def active_studies(self) -> list[ActiveStudy]:
        """Every study whose status is ``running``."""

    def claim(self) -> Claim | None:
        """Atomically take one unit of some running study's budget, or ``None``."""

    def release(self, study_name: str, reclaims: int) -> None:
        """Give one unit back (its trial was requeued), unless the ledger's reclaim count
        is no longer ``reclaims`` (a reclaim freed the unit already)."""

    def new_deal(self, study_name: str) -> int | None:
        """Hand out the study's next deal never handed out before (:mod:`.deals`), or
        ``None`` when there is none left (or the study keeps no such count)."""

    def reclaims(self, study_name: str) -> int | None:
        """The ledger's reclaim count, or ``None`` if the study no longer exists."""

    def status(self, study_name: str) -> str | None:
        """The study's lifecycle status, or ``None`` if it no longer exists."""

    def deal_lock(self, study_name: str) -> AbstractContextManager[None]:
        """Held while a worker picks and records a deal by reading the study's trials
        (:mod:`.deals`): one worker of the study at a time, on every host."""

    def settle(self, study_name: str, count_finished: Callable[[], Finished | None]) -> None:
        """Once every unit is used: begin the re-evaluation (its units join the budget) or
        mark the study completed; else reclaim lost units.

        ``count_finished`` is called only when every unit is claimed; it returns what the
        finished trials add up to, or ``None`` while a trial is still running.
        """


class WorkerRegistry(Protocol):
    """Which workers are alive, where, and on what."""

    def beat(self, info: WorkerInfo) -> int:
        """Record that this worker is alive; return how many live workers (this one
        included) share its machine."""

    def retire(self, worker_id: str) -> None:
        """Remove this worker from the registry on a clean exit."""


class WorkSignal(Protocol):
    """Tells an idle worker that work may have come (a study submitted or resumed, a unit
    given back), so that it need not poll."""

    def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
        """Wait up to ``timeout`` seconds for a signal; True when one came (or when the
        worker should look now: it may have missed one), False when the time ran out.
        Returns soon after ``stopping()`` turns true."""

    def release(self) -> None:
        """The worker took work: let go of what only waiting holds (a connection of its
        own); the next :meth:`wait` takes it again."""

    def close(self) -> None:
        """The worker exits."""


@dataclass(frozen=True)
class Backend:
    """Everything a worker reads and writes besides Optuna's storage.

    ``signal`` is None where the database cannot signal (SQLite): idle workers poll.
    """

    ledger: StudyLedger
    registry: WorkerRegistry
    datasets: DatasetResolver
    signal: WorkSignal | None = None
