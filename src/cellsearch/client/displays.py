"""Where a watch's status line goes: a terminal, a pipe, a Jupyter notebook, or nowhere.

- :class:`TextDisplay`: on a terminal the line is redrawn in place; into a pipe (a log,
  ``| tee``) it is printed when the progress changes and every ``PIPE_EVERY`` seconds
  otherwise. Messages go to stderr, wrapped to 80 columns. The CLI uses this one.
- :class:`NotebookDisplay`: in a Jupyter kernel, one output updated in place (IPython's
  display handles: no widget library needed, and it works in an executed notebook).
- :class:`NullDisplay`: ``progress=False``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from cellsearch.client.progress import Display
from cellsearch.client.text import wrap

PIPE_EVERY = 15.0  # seconds between status lines into a pipe when nothing else changes


@dataclass
class TextDisplay:
    """The status on stdout (in place on a terminal), messages on stderr."""

    tty: bool = field(default_factory=lambda: sys.stdout.isatty())
    stop_hint: str = "Ctrl-C"
    drawn: bool = False
    last_printed: tuple[object, ...] | None = None
    last_time: float = 0.0

    def status(self, line: str, key: tuple[object, ...], now: float) -> None:
        """Redraw the line (terminal), or print it when it changed or time passed (pipe)."""
        if self.tty:
            sys.stdout.write(f"\r{line}\x1b[K")
            sys.stdout.flush()
            self.drawn = True
        elif key != self.last_printed or now - self.last_time >= PIPE_EVERY:
            print(line, flush=True)
            self.last_printed, self.last_time = key, now

    def message(self, text: str) -> None:
        """Print ``text`` on stderr, on lines of its own."""
        self.end_line()
        for line in wrap(text):
            print(line, file=sys.stderr, flush=True)

    def end_line(self) -> None:
        """End a line drawn in place, so that what follows starts on a new one."""
        if self.tty and self.drawn:
            print("", flush=True)
            self.drawn = False


@dataclass
class NotebookDisplay:
    """One output of the running cell, updated in place; messages printed below it."""

    stop_hint: str = "interrupting the kernel"
    handle: Any = None

    def status(self, line: str, key: tuple[object, ...], now: float) -> None:
        """Show ``line`` in the cell's status output."""
        from IPython.display import display

        if self.handle is None:
            self.handle = display({"text/plain": line}, raw=True, display_id=True)
        else:
            self.handle.update({"text/plain": line}, raw=True)

    def message(self, text: str) -> None:
        """Print ``text`` below the status (it stays where it is)."""
        print(text, file=sys.stderr, flush=True)

    def end_line(self) -> None:
        """Nothing to end: the status output stays as last shown."""


class NullDisplay:
    """Shows nothing (``progress=False``)."""

    stop_hint = "Ctrl-C"

    def status(self, line: str, key: tuple[object, ...], now: float) -> None:
        """Show nothing."""

    def message(self, text: str) -> None:
        """Say nothing."""

    def end_line(self) -> None:
        """Nothing to end."""


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (IPython already loaded, with a kernel)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def display_for(progress: bool) -> Display:
    """The display a watch uses: none, a notebook's, or the terminal's."""
    if not progress:
        return NullDisplay()
    return NotebookDisplay() if in_notebook() else TextDisplay()
