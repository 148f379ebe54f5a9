"""An in-process cache of what is derived from a study's trials, valid while they are.

Building the report of a study reads all its trials and runs the statistics (about a
second for 10,000 trials); its trial counts take an aggregate over every trial. The
marker that says whether a cached value still describes the study costs one small query
(:func:`cellsearch.search.optuna_adapter.bulk_read.change_markers`: per state, how many
trials and the last completion). So a finished study's report is built once, and a
running study's once per change.

The cache is bounded (least recently used studies are dropped first) and lives in the
process: each API process keeps its own. Concurrent requests for the same study and
marker wait for one build instead of each building it.

The marker query itself scans the study's rows of the trials table (about 4 ms of the API
process's CPU at 10,000 trials on SQLite, where the database runs in the process). A
:class:`MarkerMemo` reuses a study's marker for ``CELLSEARCH_MARKER_MAX_AGE_S`` (1 s by
default): a burst of requests for one study pays for one marker query, and what the
caches serve lags a finished trial by at most that long.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from cellsearch.search.optuna_adapter import bulk_read

T = TypeVar("T")


@dataclass(frozen=True)
class _Entry(Generic[T]):
    marker: Hashable
    value: T


class MarkerCache(Generic[T]):
    """A least-recently-used map from a key (a study, or a page of one) to the value built
    for one marker.

    Args:
        max_studies: How many keys to keep; 0 keeps none (every call builds).
    """

    def __init__(self, max_studies: int) -> None:
        self.max_studies = max_studies
        self.builds = 0
        self._entries: OrderedDict[Hashable, _Entry[T]] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[Hashable, threading.Lock] = {}

    def get(
        self,
        key: Hashable,
        marker: Hashable,
        build: Callable[[], T],
        keep: Callable[[T], bool] | None = None,
    ) -> T:
        """The value of ``key`` for ``marker``: cached, or built now by ``build()`` (and
        kept unless ``keep`` says the value may change while the marker does not)."""
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
                if keep is None or keep(value):
                    self._store(key, _Entry(marker, value))
                elif key not in self._entries:
                    self._building.pop(key, None)
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


class MarkerMemo:
    """Change markers of studies
    (:func:`~cellsearch.search.optuna_adapter.bulk_read.change_markers`), each reused for
    ``max_age`` seconds after it was read.

    Args:
        max_age: Seconds a marker is reused; 0 reads it on every call.
        max_studies: Markers kept at most (least recently read dropped first).
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        max_age: float,
        *,
        max_studies: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_studies = max_studies
        self.reads = 0
        self._clock = clock
        self._seen: OrderedDict[tuple[str, int], tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def marker(self, conn: Connection, database: str, study_id: int) -> tuple[Any, ...]:
        """The marker of one study (see :meth:`markers`)."""
        return self.markers(conn, database, [study_id])[study_id]

    def markers(
        self, conn: Connection, database: str, study_ids: Sequence[int]
    ) -> dict[int, tuple[Any, ...]]:
        """The markers of these studies of ``database`` (a key naming it): those read less
        than ``max_age`` ago as they were, the others read now in one query."""
        now = self._clock()  # before the query: an entry is never younger than its data
        found: dict[int, tuple[Any, ...]] = {}
        with self._lock:
            for study_id in study_ids:
                seen = self._seen.get((database, study_id))
                if seen is not None and now - seen[0] < self.max_age:
                    found[study_id] = seen[1]
        stale = [study_id for study_id in study_ids if study_id not in found]
        if not stale:
            return found
        read = bulk_read.change_markers(conn, stale)
        with self._lock:
            self.reads += 1
            if self.max_age > 0:
                for study_id, marker in read.items():
                    self._seen[(database, study_id)] = (now, marker)
                    self._seen.move_to_end((database, study_id))
                while len(self._seen) > self.max_studies:
                    self._seen.popitem(last=False)
        return found | read


FRESH = MarkerMemo(0.0)
"""Reads every marker when asked (for callers outside the API's request handling)."""
