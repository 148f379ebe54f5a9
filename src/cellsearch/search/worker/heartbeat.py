"""The heartbeat thread of a running trial (and of its worker's registry row)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna

from cellsearch.search.optuna_adapter import record_attrs
from cellsearch.search.trial.retry import is_transient, summary

log = logging.getLogger(__name__)


class Heartbeat:
    """A thread that records the running trial's heartbeat (and the worker's).

    The trial's own heartbeat is first written after one interval, together with its
    static attributes (see :meth:`started`), then every interval; a trial shorter than the
    interval writes none here. The worker registry hears of the trial after
    ``registry_delay`` seconds (zero when the worker's last registry beat is older than
    ``REGISTRY_MIN_GAP`` in :mod:`.loop`), so a worker running many short trials updates
    its registry row about once a second, not once a trial.
    """

    def __init__(self, storage: optuna.storages.RDBStorage, trial: optuna.Trial,
                 beat: Callable[[], None], registry_delay: float = 0.0) -> None:  # fmt: skip
        self._interval = float(storage.heartbeat_interval or 1)
        self._registry_delay = registry_delay
        self._trial = trial
        self._beat = beat
        self._pending: dict[str, Any] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cellsearch-heartbeat", daemon=True)

    def started(self, attrs: dict[str, Any]) -> None:
        """Write ``attrs`` (the trial's static attributes) with the next heartbeat."""
        self._pending = attrs

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        start = time.monotonic()
        registry_at: float | None = start + self._registry_delay
        tick_at = start + self._interval
        while True:
            now = time.monotonic()
            if registry_at is not None and now >= registry_at:
                quietly(self._beat, "worker registry beat")
                registry_at = None
            if now >= tick_at:
                quietly(self._record, "trial heartbeat")
                quietly(self._beat, "worker registry beat")
                tick_at += self._interval
            wake = tick_at if registry_at is None else min(registry_at, tick_at)
            if self._done.wait(max(0.0, wake - time.monotonic())):
                return

    def _record(self) -> None:
        attrs, self._pending = self._pending, {}
        # the trial may have ended (or been failed as stale) while this tick ran
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            record_attrs(self._trial, attrs, heartbeat=True)


def quietly(fn: Callable[[], object], what: str) -> None:
    """Call ``fn``; log (never raise) its failure, briefly when the database is away."""
    try:
        fn()
    except Exception as exc:  # a lost connection must not kill the heartbeat or the exit path
        if is_transient(exc):  # one line per tick while the database is away, no traceback
            log.warning("%s skipped: database unavailable (%s)", what, summary(exc))
        else:
            log.warning("%s failed; ignored", what, exc_info=True)
