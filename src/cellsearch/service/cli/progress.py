"""Following a study until it ends (``submit --wait``, ``watch``), and how that ends.

The status line and the polling loop are the Python client's
(:mod:`cellsearch.client.progress`: what ``Client.wait`` shows in a notebook is what the
CLI shows): one line, redrawn in place on a terminal and printed now and then into a
pipe, with trials finished, the epoch each running trial is in, the best value under the
objective's name, the time elapsed and an ETA, in at most 80 columns. When the API stops
answering (a restart, a deploy), the watch says so, retries, and carries on when it is
back; it gives up after ``max_outage`` seconds, says how to re-attach and exits 1.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import typer

from cellsearch.client import ApiUnavailable, Client, StudyDetail
from cellsearch.client.displays import TextDisplay
from cellsearch.client.progress import (
    Eta,
    Pace,
    epochs_done,
    follow_study,
    progress_line,
)
from cellsearch.client.records import FINAL_STATUSES
from cellsearch.client.text import clock
from cellsearch.service.cli.client import message_of

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_NO_RESULT",
    "FINAL_STATUSES",
    "Eta",
    "clock",
    "ending",
    "epochs_done",
    "exit_code",
    "follow",
    "progress_line",
]

EXIT_CANCELLED = 3  # the study was cancelled before its budget was used
EXIT_NO_RESULT = 4  # the study ended without one completed trial (all failed or pruned)


def follow(
    client: Client,
    name: str,
    *,
    poll: float = 1.0,
    max_outage: float = 600.0,
    now: Callable[[], float] | None = None,
    sleep: Callable[[float], None] | None = None,
) -> StudyDetail:
    """Show the study's progress until it is completed or cancelled; return its detail.

    While the API does not answer, retry every few seconds for up to ``max_outage``
    seconds (then end the command with status 1 and say how to re-attach). ``now`` and
    ``sleep`` default to the ``time`` module's clock and sleep.
    """
    pace = Pace(now=now or time.monotonic, sleep=sleep or time.sleep, poll=poll,
                max_outage=max_outage)  # fmt: skip
    try:
        return follow_study(client, name, display=TextDisplay(), pace=pace,
                            reattach=f"cellsearch watch {name}", describe=message_of)  # fmt: skip
    except ApiUnavailable:  # the watch said it gave up, and how to re-attach
        raise typer.Exit(1) from None


def exit_code(study: StudyDetail) -> int:
    """0 when the study completed with results; 3 when cancelled; 4 when no trial completed."""
    if study.status == "cancelled":
        return EXIT_CANCELLED
    if study.status == "completed" and study.counts.complete == 0:
        return EXIT_NO_RESULT
    return 0


def ending(study: StudyDetail) -> str | None:
    """What to tell the user when the watch ends other than with results (None: fine)."""
    c, name = study.counts, study.name
    if study.status == "cancelled":
        return f"study {name} was cancelled after {c.finished} of {study.n_trials} trials"
    if exit_code(study) == EXIT_NO_RESULT:
        return (
            f"study {name} ended without a completed trial ({c.failed} failed, "
            f"{c.pruned} pruned): see `cellsearch trials {name} --state fail`"
        )
    return None
