"""Following a study until it ends (``submit --wait``, ``watch``).

One status line, redrawn in place on a terminal and printed now and then into a pipe:
trials finished, the epoch each running trial is in, the best value under the
objective's name, the time elapsed and an ETA, in at most 80 columns. When the API stops
answering (a restart, a deploy), the watch says so, retries, and carries on when it is
back; it gives up after ``max_outage`` seconds and says how to re-attach.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer

from cellsearch.service.cli.client import Api, ApiUnavailable
from cellsearch.service.cli.text import num, width, wrap

FINAL_STATUSES = ("completed", "cancelled")
EXIT_CANCELLED = 3  # the study was cancelled before its budget was used
EXIT_NO_RESULT = 4  # the study ended without one completed trial (all failed or pruned)
PIPE_EVERY = 15.0  # seconds between status lines into a pipe when nothing else changes


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


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


def epochs_done(study: dict[str, Any], running: list[dict[str, Any]]) -> tuple[float, float]:
    """Epochs done and the total of the budget (a finished trial counts as all of its)."""
    max_epochs = study["spec"]["budget"]["max_epochs"]
    counts = study["counts"]
    done = (counts["finished"] + counts.get("reevaluated", 0)) * max_epochs
    done += sum(min(len(t.get("learning_curve") or {}), max_epochs) for t in running)
    planned = study["n_trials"] + study.get("n_reevaluations", 0)
    return float(done), float(planned * max_epochs)


def _running_text(running: list[dict[str, Any]], max_epochs: int, mode: str) -> str:
    """``2 running (epoch 3/10, 7/10)``; ``compact``: ``(epoch 3-7/10)``; ``count``: none."""
    # the epoch a trial is in: one past those it reported, at most the last
    epochs = sorted(min(len(t.get("learning_curve") or {}) + 1, max_epochs) for t in running)
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
    study: dict[str, Any],
    running: list[dict[str, Any]],
    *,
    elapsed: float,
    eta: float | None,
    columns: int = 80,
) -> str:
    """The one-line status of a study, at most ``columns`` characters, e.g.
    ``3/30 | 2 running (epoch 3-7/10) | best validation MSE 0.000271 | 0:42, ETA 1:05``."""
    c = study["counts"]
    max_epochs = study["spec"]["budget"]["max_epochs"]
    best = study.get("best_trial")
    objective = study.get("objective") or "value"
    status = "" if study["status"] == "running" else f", {study['status']}"
    if study.get("note"):
        status += ", no live worker"
    failed = f" ({c['failed']} failed)" if c["failed"] else ""
    left = f"ETA {clock(eta) if eta is not None else '--'}"
    line = ""
    for mode, done, cell, spent in _VARIANTS:
        again = study.get("n_reevaluations", 0)
        rerun = f" +{c.get('reevaluated', 0)}/{again} re-eval" if again else ""
        head = (
            f"{c['finished']}/{study['n_trials']}{rerun}{' done' if done else ''}{failed}{status}"
        )
        best_text = f"best {objective} " + (
            f"{num(best['value'], 3)}" + (f" ({best['cell_type']})" if cell else "")
            if best else "(none yet)"
        )  # fmt: skip
        times = f"{clock(elapsed)}, {left}" if spent else left
        line = " | ".join((head, _running_text(running, max_epochs, mode), best_text, times))
        if len(line) <= columns:
            return line
    return line[: columns - 1] + "~"


@dataclass
class _Display:
    """Where the status goes: redrawn in place on a terminal, printed now and then in a pipe."""

    tty: bool = field(default_factory=lambda: sys.stdout.isatty())
    drawn: bool = False
    last_printed: tuple[Any, ...] | None = None
    last_time: float = 0.0

    def status(self, line: str, key: tuple[Any, ...], now: float) -> None:
        if self.tty:
            typer.echo(f"\r{line}\x1b[K", nl=False)
            sys.stdout.flush()
            self.drawn = True
        elif key != self.last_printed or now - self.last_time >= PIPE_EVERY:
            typer.echo(line)
            self.last_printed, self.last_time = key, now

    def message(self, text: str) -> None:
        self.end_line()
        for line in wrap(text):
            typer.echo(line, err=True)

    def end_line(self) -> None:
        if self.tty and self.drawn:
            typer.echo("")
            self.drawn = False


def follow(
    api: Api,
    name: str,
    *,
    poll: float = 1.0,
    max_outage: float = 600.0,
    now: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Show the study's progress until it is completed or cancelled; return its detail.

    While the API does not answer, retry every few seconds for up to ``max_outage``
    seconds (then end the command with status 1 and say how to re-attach). ``now`` and
    ``sleep`` default to the ``time`` module's clock and sleep.
    """
    now = now or time.monotonic
    sleep = sleep or time.sleep
    display, eta, started = _Display(), Eta(), now()
    down_since: float | None = None
    note: str | None = None  # said once each time it appears
    retry = max(poll, 2.0)
    while True:
        try:
            study = api.study_or_unavailable(name)
            running = api.running_trials(name) if study["counts"]["running"] else []
        except ApiUnavailable as exc:
            if down_since is None:
                down_since = now()
                display.message(f"{exc} Retrying every {retry:g} s for up to "
                                f"{clock(max_outage)} (Ctrl-C stops watching).")  # fmt: skip
            elif now() - down_since > max_outage:
                display.message(
                    f"gave up: the API did not answer for {clock(max_outage)}. The study goes "
                    f"on; re-attach with `cellsearch watch {name}`."
                )
                raise typer.Exit(1) from None
            sleep(retry)
            continue
        if down_since is not None:
            display.message(f"the API answers again (after {clock(now() - down_since)}); "
                            f"following {name}")  # fmt: skip
            down_since = None
        t = now()
        done, total = epochs_done(study, running)
        line = progress_line(study, running, elapsed=t - started, eta=eta.update(t, done, total),
                             columns=width() - 1)  # fmt: skip
        if study.get("note") != note:
            note = study.get("note")
            if note:
                display.message(f"{name}: {note}")
        display.status(line, (study["counts"]["finished"], study["status"], len(running)), t)
        if study["status"] in FINAL_STATUSES:
            display.end_line()
            return study
        sleep(poll)


def exit_code(study: dict[str, Any]) -> int:
    """0 when the study completed with results; 3 when cancelled; 4 when no trial completed."""
    if study["status"] == "cancelled":
        return EXIT_CANCELLED
    if study["status"] == "completed" and study["counts"]["complete"] == 0:
        return EXIT_NO_RESULT
    return 0


def ending(study: dict[str, Any]) -> str | None:
    """What to tell the user when the watch ends other than with results (None: fine)."""
    c, name = study["counts"], study["name"]
    if study["status"] == "cancelled":
        return f"study {name} was cancelled after {c['finished']} of {study['n_trials']} trials"
    if exit_code(study) == EXIT_NO_RESULT:
        return (
            f"study {name} ended without a completed trial ({c['failed']} failed, "
            f"{c['pruned']} pruned): see `cellsearch trials {name} --state fail`"
        )
    return None
