"""How an idle worker waits for work: quietly, on a work signal, with a slow fallback poll.

Where the backend signals new work (PostgreSQL's LISTEN/NOTIFY, a
:class:`~.protocol.WorkSignal`), an idle worker waits for a signal and looks for work on
its own only after a wait that doubles from ``poll_interval`` up to ``idle_poll_max`` (a
signal, or taking work, starts it short again). Without a signal (SQLite) it looks every
``poll_interval``. Either way its registry row is refreshed every ``beat_every`` seconds
(half the grace period: the row stays live), and not more often.

So on PostgreSQL an idle worker with the default settings makes about five transactions
a minute: four registry beats (one transaction each) and, once the back-off has grown,
one look for work, which is one read of the running studies while none runs (the worker
tries no claim then). ``benchmarks/workers.py --only idle`` measures it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cellsearch.search.trial.retry import is_transient, summary
from cellsearch.search.worker.heartbeat import quietly
from cellsearch.search.worker.protocol import WorkSignal

log = logging.getLogger(__name__)


class IdleWait:
    """The waits of one idle worker (module docstring).

    Args:
        signal: The backend's work signal; None to poll every ``poll_interval``.
        poll_interval: The first wait with a signal; every wait without one.
        idle_poll_max: The longest wait with a signal.
        beat_every: Seconds between registry beats while idle.
        stop: Set when the worker is asked to stop: every wait ends soon after.
    """

    def __init__(
        self,
        signal: WorkSignal | None,
        *,
        poll_interval: float,
        idle_poll_max: float,
        beat_every: float,
        stop: threading.Event,
    ) -> None:
        self.signal = signal
        self.poll_interval = poll_interval
        self.idle_poll_max = max(idle_poll_max, poll_interval)
        self.beat_every = beat_every
        self.backoff = poll_interval  # the next wait with a signal
        self._stop = stop

    def wait(self, beat: Callable[[], None], last_beat: float) -> None:
        """Wait until a signal comes or the wait runs out, calling ``beat`` whenever
        ``beat_every`` seconds have passed since the last beat (``last_beat``, monotonic)."""
        next_beat = last_beat + self.beat_every
        span = self.backoff if self.signal is not None else self.poll_interval
        deadline = time.monotonic() + span
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat:
                quietly(beat, "worker registry beat")
                next_beat = now + self.beat_every
            left = deadline - now
            if left <= 0:
                self.backoff = min(2 * self.backoff, self.idle_poll_max)
                return
            wait = min(left, next_beat - now)
            if self.signal is None:
                self._stop.wait(wait)
            elif self._signalled(self.signal, wait):
                self.backoff = self.poll_interval
                return

    def _signalled(self, signal: WorkSignal, wait: float) -> bool:
        """Wait on ``signal`` up to ``wait`` seconds; an error (the database away) is
        logged and waited out."""
        try:
            return signal.wait(wait, self._stop.is_set)
        except Exception as exc:
            if is_transient(exc):
                log.warning("waiting for work: database unavailable (%s)", summary(exc))
            else:
                log.warning("waiting for work failed; polling", exc_info=True)
            self._stop.wait(wait)
            return False

    def working(self) -> None:
        """The worker took work: its next idle wait starts short, and the signal lets go
        of what only waiting holds."""
        self.backoff = self.poll_interval
        if self.signal is not None:
            self.signal.release()

    def close(self) -> None:
        """The worker exits: close the signal's connection, if it has one."""
        if self.signal is not None:
            quietly(self.signal.close, "closing the listening connection")
