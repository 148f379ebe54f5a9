"""How an idle worker waits: the back-off, the beats, a signal, stopping (no database)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from cellsearch.search.worker.idle import IdleWait


class FakeSignal:
    """A work signal that answers from a script and records each wait's timeout."""

    def __init__(self, answers: list[bool] | None = None) -> None:
        self.answers = list(answers or [])
        self.timeouts: list[float] = []
        self.released = 0
        self.closed = 0

    def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
        self.timeouts.append(timeout)
        if self.answers and self.answers.pop(0):
            return True
        time.sleep(timeout)  # nothing came: the whole timeout passed
        return False

    def release(self) -> None:
        self.released += 1

    def close(self) -> None:
        self.closed += 1


def idle(signal: FakeSignal | None, *, beat_every: float = 1e6, **options: float) -> IdleWait:
    values = {"poll_interval": 0.01, "idle_poll_max": 0.04, **options}
    return IdleWait(signal, beat_every=beat_every, stop=threading.Event(), **values)


def test_the_wait_doubles_up_to_its_ceiling_while_nothing_comes() -> None:
    waiting = idle(FakeSignal())
    spans = []
    for _ in range(5):
        spans.append(waiting.backoff)
        waiting.wait(lambda: None, last_beat=0.0)
    assert spans == [0.01, 0.02, 0.04, 0.04, 0.04]


def test_a_signal_or_work_starts_the_wait_short_again() -> None:
    signal = FakeSignal([False, False, True])  # one answer per call: one call per wait here
    waiting = idle(signal)
    for _ in range(2):
        waiting.wait(lambda: None, last_beat=0.0)
    assert waiting.backoff == 0.04
    waiting.wait(lambda: None, last_beat=0.0)  # the signal came during this wait
    assert waiting.backoff == 0.01
    waiting.wait(lambda: None, last_beat=0.0)
    assert waiting.backoff == 0.02
    waiting.working()
    assert (waiting.backoff, signal.released) == (0.01, 1)
    waiting.close()
    assert signal.closed == 1


def test_each_wait_on_the_signal_is_cut_at_the_next_beat() -> None:
    signal = FakeSignal()
    beats: list[int] = []
    waiting = idle(signal, poll_interval=0.2, idle_poll_max=0.2, beat_every=0.05)
    waiting.wait(lambda: beats.append(1), last_beat=float("-inf"))
    assert len(beats) >= 2  # at the start, then every 0.05 s of the 0.2 s wait
    assert all(t <= 0.05 + 1e-9 for t in signal.timeouts)


def test_without_a_signal_it_polls_every_poll_interval() -> None:
    class Recorded(threading.Event):
        def __init__(self) -> None:
            super().__init__()
            self.timeouts: list[float] = []

        def wait(self, timeout: float | None = None) -> bool:
            self.timeouts.append(timeout or 0.0)
            return super().wait(timeout)

    stop = Recorded()
    waiting = IdleWait(None, poll_interval=0.01, idle_poll_max=10.0, beat_every=1e6, stop=stop)
    for _ in range(3):
        waiting.wait(lambda: None, last_beat=0.0)
    assert len(stop.timeouts) >= 3  # (more if the machine paused the test mid-wait)
    assert max(stop.timeouts) <= 0.01  # every wait is poll_interval: no back-off


def test_a_failing_signal_is_waited_out_not_raised() -> None:
    class Broken(FakeSignal):
        def wait(self, timeout: float, stopping: Callable[[], bool]) -> bool:
            raise ConnectionError("database away")

    waiting = idle(Broken())
    waiting.wait(lambda: None, last_beat=0.0)  # logged, then the wait runs out
    assert waiting.backoff == 0.02


def test_stopping_ends_the_wait() -> None:
    stop = threading.Event()
    stop.set()
    signal = FakeSignal()
    waiting = IdleWait(signal, poll_interval=60.0, idle_poll_max=60.0, beat_every=1e6, stop=stop)
    waiting.wait(lambda: None, last_beat=0.0)
    assert signal.timeouts == []


@pytest.mark.parametrize("ceiling", [0.001, 0.01])
def test_the_ceiling_is_never_below_the_first_wait(ceiling: float) -> None:
    assert idle(FakeSignal(), poll_interval=0.01, idle_poll_max=ceiling).idle_poll_max == 0.01
