"""An in-process cache of what is derived from a study's trials, valid while they are.

Building the report of a study reads all its trials and runs the statistics (about a
second for 10,000 trials); its trial counts take an aggregate over every trial. The
marker that says whether a cached value still describes the study costs one small query
(:func:`cellsearch.search.trial.bulk_read.change_marker`: per state, how many trials and
the last completion). So a finished study's report is built once, and a running
study's once per change.

The cache is bounded (least recently used studies are dropped first) and lives in the
process: each API process keeps its own. Concurrent requests for the same study and
marker wait for one build instead of each building it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    marker: Hashable
    value: T


class MarkerCache(Generic[T]):
    """A least-recently-used map from a study key to the value built for one marker.

    Args:
        max_studies: How many studies to keep; 0 keeps none (every call builds).
    """

    def __init__(self, max_studies: int) -> None:
        self.max_studies = max_studies
        self.builds = 0
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, marker: Hashable, build: Callable[[], T]) -> T:
        """The value of ``key`` for ``marker``: cached, or built now by ``build()``."""
        found = self._lookup(key, marker)
        if found is not None:
            return found.value
        with self._lock:
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:  # one build per key at a time; the others wait for it
            found = self._lookup(key, marker)
            if found is not None:
                return found.value
            try:
                value = build()
            except BaseException:
                with self._lock:  # keep no lock for a key that holds no entry
                    if key not in self._entries:
                        self._building.pop(key, None)
                raise
            with self._lock:
                self.builds += 1
                self._store(key, _Entry(marker, value))
            return value

    def peek(self, key: Hashable, marker: Hashable) -> bool:
        """Whether ``key`` holds a value for ``marker``."""
        return self._lookup(key, marker) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()

    def _lookup(self, key: Hashable, marker: Hashable) -> _Entry[T] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.marker != marker:
                return None
            self._entries.move_to_end(key)
            return entry

    def _store(self, key: Hashable, entry: _Entry[T]) -> None:
        """Keep ``entry`` (caller holds the lock), dropping the least recently used."""
        if self.max_studies <= 0:
            self._building.pop(key, None)
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_studies:
            dropped, _ = self._entries.popitem(last=False)
            self._building.pop(dropped, None)
