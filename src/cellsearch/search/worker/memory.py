"""A worker's memory: what it occupies, and handing freed memory back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from dataclasses import dataclass


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim() -> bool:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``).

    Python frees objects into the C heap, which glibc keeps for reuse; after a study's
    trials, caches and tensors are dropped, trimming makes the drop show in the process's
    resident memory. A no-op (False) where the C library has no ``malloc_trim``.
    """
    libc = _libc()
    trim_heap = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim_heap is None:
        return False
    return bool(trim_heap(0))


@dataclass(frozen=True)
class Usage:
    """A process's memory in MiB.

    Attributes:
        rss: Resident set size: every page in memory, shared library pages included.
        private: Pages of this process alone (``Private_Clean + Private_Dirty``): what
            one more such process adds to a machine.
        pss: Proportional set size: private pages plus each shared page divided by the
            number of processes sharing it (sums to the machine's use over processes).
    """

    rss: float
    private: float
    pss: float


def usage(pid: int | None = None) -> Usage | None:
    """The memory of process ``pid`` (this one by default), from ``/proc`` (Linux);
    None where it cannot be read."""
    path = f"/proc/{pid or os.getpid()}/smaps_rollup"
    fields: dict[str, float] = {}
    try:
        with open(path) as rollup:
            for line in rollup:
                key, _, rest = line.partition(":")
                if rest.strip().endswith("kB"):
                    fields[key] = float(rest.split()[0]) / 1024
    except OSError:
        return None
    private = fields.get("Private_Clean", 0.0) + fields.get("Private_Dirty", 0.0)
    return Usage(rss=fields.get("Rss", 0.0), private=private, pss=fields.get("Pss", 0.0))
