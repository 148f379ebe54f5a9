"""Parsing uploads in a separate process, so that the API stays responsive meanwhile.

Reading a CSV is pure Python: in a thread of the API process it would hold the GIL for
seconds and every other request (``/healthz`` included) would wait its turn. A child
process parses instead; the API process only waits for its answer (in a worker thread,
off the event loop). The child also bounds the damage of a pathological file: if it runs
out of memory and dies, the upload is refused and a fresh child serves the next one.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.file_formats import parse_upload, summarize
from cellsearch.search.tasks.upload_limits import UploadLimits

log = logging.getLogger(__name__)
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def summarize_upload(
    content: bytes,
    fmt: Literal["npz", "csv"],
    *,
    kind: str | None,
    max_bytes: int,
    limits: UploadLimits,
) -> dict[str, object]:
    """Parse and validate an upload (in this process) and return its summary."""
    return summarize(parse_upload(content, fmt, kind=kind, max_bytes=max_bytes, limits=limits))


def summarize_in_child(
    content: bytes,
    fmt: Literal["npz", "csv"],
    *,
    kind: str | None,
    max_bytes: int,
    limits: UploadLimits,
) -> dict[str, object]:
    """:func:`summarize_upload` in the parsing process; blocks the calling thread only.

    Raises:
        DatasetError: the upload is invalid, or the parser died on it (out of memory).
    """
    pool = _executor()
    future = pool.submit(
        summarize_upload, content, fmt, kind=kind, max_bytes=max_bytes, limits=limits
    )
    try:
        return future.result()
    except BrokenProcessPool:
        _discard(pool)
        log.error("the upload parser died (out of memory?) on a %d-byte %s", len(content), fmt)
        raise DatasetError(
            "the data set could not be parsed: the parser ran out of resources on it"
        ) from None


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn")
            )
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)
