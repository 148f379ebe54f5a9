"""Static files of the report page: plotly.js, served by the API, never from a CDN.

The file is the ``plotly.min.js`` shipped inside the plotly package (a dependency of
cellsearch), so the page works offline. Pages link it under a name that carries a digest
of its content, which lets browsers and proxies keep it for a year without asking again:
a new plotly release is a new name. The plain name stays for older links, cached a day.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import plotly

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
PLAIN_NAME = "plotly.min.js"
IMMUTABLE = "public, max-age=31536000, immutable"  # a year: the name changes with the content
ONE_DAY = "public, max-age=86400"


@functools.cache
def plotly_name() -> str:
    """The versioned file name of plotly.js: ``plotly-<12 hex digits of sha256>.min.js``."""
    digest = hashlib.sha256(PLOTLY_JS.read_bytes()).hexdigest()[:12]
    return f"plotly-{digest}.min.js"


def plotly_src() -> str:
    """The script URL of plotly.js relative to a report page (``/studies/{name}/report.html``).

    Relative, so that the page works when the API is mounted under a path prefix.
    """
    return f"../../assets/{plotly_name()}"


def cache_control(name: str) -> str | None:
    """The ``Cache-Control`` of asset ``name``, or None when there is no such asset."""
    if name == plotly_name():
        return IMMUTABLE
    return ONE_DAY if name == PLAIN_NAME else None


def etags_of(if_none_match: str | None) -> list[str]:
    """The entity tags listed in an ``If-None-Match`` header (weak ones compared as strong)."""
    if not if_none_match:
        return []
    return [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
