"""Following a study or a suite until it ends: the status line and the polling loop.

The study's line is the one ``cellsearch submit --wait`` shows: trials finished, the
epoch each running trial is in, the best value under the objective's name, the time
elapsed and an ETA, in at most 80 columns. :func:`watch` polls, hands each state to a
display and rides out an API that stops answering (a restart, a deploy) for up to
``max_outage`` seconds. Where the line goes is :mod:`.displays`: redrawn in place on a
terminal, printed now and then into a pipe, updated in place in a Jupyter notebook.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cellsearch.client.errors import ApiUnavailable, WaitTimeout
from cellsearch.client.records import StudyDetail, SuiteDetail, Trial
from cellsearch.client.text import clock, number, width

T = TypeVar("T")
FINAL_STUDY = ("completed", "cancelled", "missing")  # a suite's study may have been deleted


class Display(Protocol):
    """Where a watch shows its status line and its messages."""

    stop_hint: str
    """How the user stops watching, said in the outage message ("Ctrl-C")."""

    def status(self, line: str, key: tuple[object, ...], now: float) -> None:
        """Show the status ``line``; ``key`` changes when the progress does."""

    def message(self, text: str) -> None:
        """Say something once (an outage, a note), apart from the status line."""

    def end_line(self) -> None:
        """The watch is over (or a message follows): end the status line."""


@dataclass
class Eta:
    """Time left, from the epochs done lately (all workers together).

    A finished trial counts as ``max_epochs`` epochs, a running one as the epochs it
    reported; so the first estimate comes after the first epoch, not the first trial.
    The rate is measured over the last ``window`` seconds (a watch that began during an
    outage or a slow first trial soon forgets it), or over the whole watch when nothing
    was done in the window.
    """

    window: float = 60.0
    first: tuple[float, float] | None = None  # (time, epochs done) at the first look
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def update(self, now: float, done: float, total: float) -> float | None:
        """Seconds left, or None until there is progress to measure."""
        if self.first is None or done < self.samples[-1][1]:  # a requeue took epochs back
            self.first = (now, done)
            self.samples.clear()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()  # keep one sample at least `window` old as the anchor
        for start, done0 in (self.samples[0], self.first):
            if done > done0 and now - start >= 1.0:
                return max(0.0, (total - done) * (now - start) / (done - done0))
        return None


def epochs_done(study: StudyDetail, running: Sequence[Trial]) -> tuple[float, float]:
    """Epochs done and the total of the budget (a finished trial counts as all of its)."""
    max_epochs = study.max_epochs
    counts = study.counts
    done = (counts.finished + counts.reevaluated) * max_epochs
    done += sum(min(len(t.learning_curve), max_epochs) for t in running)
    planned = study.n_trials + study.n_reevaluations
    return float(done), float(planned * max_epochs)


def _running_text(running: Sequence[Trial], max_epochs: int, mode: str) -> str:
    """``2 running (epoch 3/10, 7/10)``; ``compact``: ``(epoch 3-7/10)``; ``count``: none."""
    # the epoch a trial is in: one past those it reported, at most the last
    epochs = sorted(min(len(t.learning_curve) + 1, max_epochs) for t in running)
    if not epochs or mode == "count":
        return f"{len(epochs)} running"
    if mode == "compact":
        span = f"{epochs[0]}" if epochs[0] == epochs[-1] else f"{epochs[0]}-{epochs[-1]}"
        return f"{len(epochs)} running (epoch {span}/{max_epochs})"
    shown = ", ".join(f"{e}/{max_epochs}" for e in epochs[-3:])
    more = f" +{len(epochs) - 3}" if len(epochs) > 3 else ""
    return f"{len(epochs)} running (epoch {shown}{more})"


# (running trials, "done" after the count, the best trial's cell, time elapsed), in the
# order tried: the objective's name and the ETA are always kept
_VARIANTS = (
    ("full", True, True, True),
    ("full", True, False, True),
    ("full", False, False, True),
    ("compact", False, False, True),
    ("full", False, False, False),
    ("compact", False, False, False),
    ("count", False, False, False),
)


def progress_line(
    study: StudyDetail,
    running: Sequence[Trial],
    *,
    elapsed: float,
    eta: float | None,
    columns: int = 80,
) -> str:
    """The one-line status of a study, at most ``columns`` characters, e.g.
    ``3/30 | 2 running (epoch 3-7/10) | best validation MSE 0.000271 | 0:42, ETA 1:05``."""
    c = study.counts
    best = study.best_trial
    objective = study.objective or "value"
    status = "" if study.status == "running" else f", {study.status}"
    if study.note:
        status += ", no live worker"
    failed = f" ({c.failed} failed)" if c.failed else ""
    left = f"ETA {clock(eta) if eta is not None else '--'}"
    again = study.n_reevaluations
    rerun = f" +{c.reevaluated}/{again} re-eval" if again else ""
    line = ""
    for mode, done, cell, spent in _VARIANTS:
        head = f"{c.finished}/{study.n_trials}{rerun}{' done' if done else ''}{failed}{status}"
        best_text = f"best {objective} " + (
            f"{number(best.value, 3)}" + (f" ({best.cell_type})" if cell else "")
            if best is not None else "(none yet)"
        )  # fmt: skip
        times = f"{clock(elapsed)}, {left}" if spent else left
        line = " | ".join((head, _running_text(running, study.max_epochs, mode), best_text, times))
        if len(line) <= columns:
            return line
    return line[: columns - 1] + "~"


def suite_line(suite: SuiteDetail, elapsed: float) -> str:
    """The one-line status of a suite: studies ended, trials finished, time elapsed."""
    done = sum(s.status in FINAL_STUDY for s in suite.studies)
    return (
        f"{suite.name}: {done}/{len(suite.studies)} studies ended, "
        f"{suite.finished}/{suite.n_trials} trials finished | {clock(elapsed)}"
    )


@dataclass(frozen=True)
class Pace:
    """How a watch polls: every ``poll`` seconds; through an outage every ``max(poll,
    2)`` seconds for up to ``max_outage``; for at most ``timeout`` seconds in all (None:
    no limit). ``now`` and ``sleep`` are the clock and the sleep (``time``'s by default)."""

    now: Callable[[], float]
    sleep: Callable[[float], None]
    poll: float = 1.0
    max_outage: float = 600.0
    timeout: float | None = None


def watch(
    fetch: Callable[[], T],
    show: Callable[[T, float, float], bool],
    *,
    name: str,
    display: Display,
    pace: Pace,
    reattach: str,
    what: str = "study",
    describe: Callable[[ApiUnavailable], str] = str,
) -> T:
    """Call ``fetch()`` every ``pace.poll`` seconds until ``show(value, now, elapsed)``
    says the watch is over; return that value.

    While the API does not answer, say so once, retry, and say when it is back.

    Args:
        fetch: Reads the state (may raise :class:`ApiUnavailable`).
        show: Shows a state on ``display``; True when it is final.
        name: What is watched, as the messages name it.
        display: Where the status and the messages go.
        pace: The clock and the polling intervals.
        reattach: How to watch again, as the give-up message says it.
        what: ``study`` or ``suite``, as the messages say it.
        describe: The text of an outage's error.

    Raises:
        ApiUnavailable: The API did not answer for ``pace.max_outage`` seconds.
        WaitTimeout: ``pace.timeout`` seconds passed (the study goes on).
    """
    started = pace.now()
    down_since: float | None = None
    retry = max(pace.poll, 2.0)
    while True:
        try:
            value = fetch()
        except ApiUnavailable as exc:
            if down_since is None:
                down_since = pace.now()
                display.message(f"{describe(exc)} Retrying every {retry:g} s for up to "
                                f"{clock(pace.max_outage)} ({display.stop_hint} stops "
                                "watching).")  # fmt: skip
            elif pace.now() - down_since > pace.max_outage:
                display.message(
                    f"gave up: the API did not answer for {clock(pace.max_outage)}. The {what} "
                    f"goes on; re-attach with `{reattach}`."
                )
                raise
            pace.sleep(retry)
            continue
        if down_since is not None:
            display.message(f"the API answers again (after {clock(pace.now() - down_since)}); "
                            f"following {name}")  # fmt: skip
            down_since = None
        now = pace.now()
        if show(value, now, now - started):
            display.end_line()
            return value
        if pace.timeout is not None and now - started > pace.timeout:
            display.end_line()
            raise WaitTimeout(
                f"{what} {name} still goes on after {clock(pace.timeout)} (`{reattach}` follows it)"
            )
        pace.sleep(pace.poll)


class StudySource(Protocol):
    """What :func:`follow_study` reads: a study and its trials (the :class:`Client`)."""

    def get(self, name: str) -> StudyDetail: ...

    def trials(self, name: str, *, state: str) -> Sequence[Trial]: ...


class SuiteSource(Protocol):
    """What :func:`follow_suite` reads: a suite (the client's ``suites``)."""

    def get(self, name: str) -> SuiteDetail: ...


def follow_study(
    source: StudySource,
    name: str,
    *,
    display: Display,
    pace: Pace,
    reattach: str,
    describe: Callable[[ApiUnavailable], str] = str,
) -> StudyDetail:
    """Show a study's progress until it is completed or cancelled; return its detail.

    A note (e.g. that no worker is alive) is said once each time it appears. See
    :func:`watch` for the arguments and the errors.
    """
    eta = Eta()
    note: list[str | None] = [None]

    def fetch() -> tuple[StudyDetail, Sequence[Trial]]:
        study = source.get(name)
        return study, source.trials(name, state="running") if study.counts.running else []

    def show(value: tuple[StudyDetail, Sequence[Trial]], now: float, elapsed: float) -> bool:
        study, running = value
        done, total = epochs_done(study, running)
        line = progress_line(study, running, elapsed=elapsed, eta=eta.update(now, done, total),
                             columns=width() - 1)  # fmt: skip
        if study.note != note[0]:
            note[0] = study.note
            if study.note:
                display.message(f"{name}: {study.note}")
        display.status(line, (study.counts.finished, study.status, len(running)), now)
        return study.ended

    study, _ = watch(fetch, show, name=name, display=display, pace=pace, reattach=reattach,
                     describe=describe)  # fmt: skip
    return study


def follow_suite(
    source: SuiteSource,
    name: str,
    *,
    display: Display,
    pace: Pace,
    reattach: str,
) -> SuiteDetail:
    """Show a suite's progress (one line) until every study has ended; return its detail."""

    def show(suite: SuiteDetail, now: float, elapsed: float) -> bool:
        key = tuple((s.status, s.counts.finished) for s in suite.studies)
        display.status(suite_line(suite, elapsed), key, now)
        return suite.ended

    return watch(lambda: source.get(name), show, name=name, display=display, pace=pace,
                 reattach=reattach, what="suite")  # fmt: skip
