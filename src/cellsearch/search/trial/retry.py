"""Riding out a database that is briefly unavailable (a restart, a failover, a network blip).

The connection pools ping each connection before use, so a connection that was cut is
replaced transparently. A server that is *down* for a moment is another matter: every
call fails until it is back. Inside a trial that must not turn into the trial's outcome
(a storage error is not a model error) or lose hours of training: :func:`retrying`
repeats a storage call with backoff for a bounded time. The bound is the grace period:
after that long without heartbeats, other workers have failed the trial as stale and
requeued it, so waiting longer gains nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

log = logging.getLogger(__name__)
T = TypeVar("T")

_FIRST_DELAY = 0.2
_MAX_DELAY = 5.0


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) means the database was unreachable.

    Connection refused, a server shutting down or starting up, a connection cut mid-call,
    SQLite's lock timeout: SQLAlchemy's ``OperationalError``, ``InterfaceError`` and
    ``DisconnectionError``, and any DBAPI error flagged as having invalidated its
    connection. Wrappers (Optuna's ``StorageInternalError``, the service's
    ``StorageUnavailable``) are looked through via ``__cause__`` and ``__context__``.
    """
    return _transient_cause(exc) is not None


def _transient_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OperationalError | InterfaceError | DisconnectionError):
            return current
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return current
        current = current.__cause__ or current.__context__
    return None


def retrying(call: Callable[[], T], *, what: str, patience: float) -> T:
    """``call()``, repeated with backoff while it fails for a transient reason.

    Args:
        call: The storage operation; it must be safe to repeat (an upsert, a read, an
            Optuna write that a repeat finds already done).
        what: Names the operation in the log.
        patience: Seconds to keep trying; 0 tries once.

    Raises:
        Exception: the call's own error when it is not transient, or still failing once
            ``patience`` has run out.
    """
    deadline = time.monotonic() + patience
    delay = _FIRST_DELAY
    while True:
        try:
            return call()
        except Exception as exc:
            left = deadline - time.monotonic()
            if not is_transient(exc) or left <= 0:
                raise
            wait = min(delay, left)
            log.warning("%s: database unavailable (%s); retrying in %.1f s", what,
                        summary(exc), wait)  # fmt: skip
            time.sleep(wait)
            delay = min(delay * 2, _MAX_DELAY)


def for_trial(number: int, patience: float) -> Callable[[Callable[[], Any], str], Any]:
    """``retrying`` bound to one trial: ``storage(call, "report")`` logs "trial 7: report"."""

    def storage(call: Callable[[], Any], what: str) -> Any:
        return retrying(call, what=f"trial {number}: {what}", patience=patience)

    return storage


def summary(exc: BaseException) -> str:
    """The driver's own words (Optuna's wrapper says "invalid data in the commit")."""
    cause = _transient_cause(exc) or exc
    text = str(getattr(cause, "orig", None) or cause).strip()
    return text.splitlines()[0][:200] if text else type(cause).__name__
