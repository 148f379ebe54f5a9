"""How a report's values are written for people, on the report pages and in the CLI.

One formatter, :func:`number`, serves both, and :func:`percent` writes shares; they differ
only in what stands for a missing value and in HTML escaping (``html=True`` for a page).
Standard library only.
"""

from __future__ import annotations

import html as html_text
from typing import Any


def number(value: Any, digits: int = 4, *, html: bool = False) -> str:
    """``value`` for people: a float to ``digits`` significant digits, anything else as text.

    Args:
        value: A number, or any value (an int, a name...), written as it is.
        digits: Significant digits of a float.
        html: For an HTML page: a missing value is ``&mdash;`` (else ``-``) and the text is
            escaped.

    Returns:
        ``"0.1235"`` for 0.123456; ``"-"`` (or ``"&mdash;"``) for None.
    """
    if value is None:
        return "&mdash;" if html else "-"
    text = f"{value:.{digits}g}" if isinstance(value, float) else str(value)
    return html_text.escape(text, quote=True) if html else text


def percent(share: float | None, *, html: bool = False) -> str:
    """A share as a percentage: ``"99.8%"``, ``"43.6%"``, ``"3.4%"``, ``"0.61%"``,
    ``"-693.3%"`` (never in exponent notation); a dash (``&mdash;``) for None."""
    if share is None:
        return "&mdash;" if html else "-"
    value = 100 * share
    if abs(value) >= 10:
        text = f"{value:.1f}".rstrip("0").rstrip(".")
    elif abs(value) >= 0.01:
        text = f"{value:.2g}"
    else:
        text = f"{value:.2f}"
    return f"{text}%"
