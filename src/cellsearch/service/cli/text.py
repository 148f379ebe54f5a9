"""Plain-text output of the CLI: tables that fit a width, wrapped prose, numbers.

Everything here returns lines of text; nothing is parsed as markup, so a message that
contains ``[a-z0-9]`` prints as written. A table never cuts a cell: when its columns do
not fit the width, one chosen column wraps inside its own width, and if even that
cannot fit, each row is printed as a block of ``name: value`` lines.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from typing import Any

import typer

from cellsearch.client.text import WIDTH, number, width, wrap

__all__ = ["WIDTH", "echo_json", "echo_lines", "num", "table", "table_width", "width", "wrap"]
GAP = "  "

num = number
"""A number for people (:func:`~cellsearch.search.report.formatting.number`: ``digits``
significant digits; ``-`` for None), as every command prints one."""


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
    return GAP.join(parts).rstrip()


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The columns a table takes without wrapping any cell."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    return sum(widths) + len(GAP) * (len(widths) - 1)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[bool] | None = None,
    wrap_column: int | None = None,
) -> list[str]:
    """Rows of text cells under their headers, fitting the output width.

    Args:
        headers: Column names.
        rows: Cells, already formatted.
        right: Per column, whether to right-align it (numbers); default: left.
        wrap_column: The column that may wrap inside its width when the table is too wide.

    Returns:
        The table's lines (a header, a rule, one or more lines per row).
    """
    right = list(right) if right is not None else [False] * len(headers)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    limit = width()
    total = sum(widths) + len(GAP) * (len(widths) - 1)
    if total > limit and wrap_column is not None:
        room = limit - (total - widths[wrap_column])
        if room >= max(len(headers[wrap_column]), 12):
            widths[wrap_column] = room
            total = limit
    if total > limit:
        return _blocks(headers, rows)
    lines = [_line(headers, widths, right), _line(["-" * w for w in widths], widths, right)]
    for row in rows:
        pieces = [
            textwrap.wrap(c, widths[i], break_long_words=True) or [""]
            if i == wrap_column else [c]
            for i, c in enumerate(row)
        ]  # fmt: skip
        for k in range(max(len(p) for p in pieces)):
            lines.append(_line([p[k] if k < len(p) else "" for p in pieces], widths, right))
    return lines


def _blocks(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Each row as ``name: value`` lines, for tables too wide to print as columns."""
    name_width = max(len(h) for h in headers)
    lines: list[str] = []
    for row in rows:
        for header, cell in zip(headers, row, strict=True):
            lines += wrap(
                cell, indent=" " * (name_width + 2), first=f"{header.rjust(name_width)}: "
            )
        lines.append("")
    return lines[:-1]


def echo_lines(lines: Sequence[str]) -> None:
    """Print lines as they are (no markup, no highlighting)."""
    for line in lines:
        typer.echo(line)


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON (the ``--json`` output of every listing)."""
    typer.echo(json.dumps(data, indent=2, default=str))
