"""Plain text for people: numbers, durations, lines that fit the terminal (80 at most)."""

from __future__ import annotations

import shutil
import textwrap

from cellsearch.search.report.formatting import number

WIDTH = 80  # the most columns any line takes; narrower terminals get their width

__all__ = ["WIDTH", "clock", "number", "width", "wrap"]


def width() -> int:
    """The output width: 80 columns, or the terminal's if it is narrower."""
    return min(WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def wrap(text: str, indent: str = "", first: str = "") -> list[str]:
    """``text`` wrapped to the output width, later lines indented by ``indent``."""
    return textwrap.wrap(
        text,
        width(),
        initial_indent=first or indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=True,
    ) or [first.rstrip()]


def clock(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
