"""Study summaries (trial counts, best trial), kept per study while its trials are unchanged.

The counts are an aggregate over every trial of a study, joined with attributes of each
trial (:func:`cellsearch.service.studies.operations.trial_counts`): tens of milliseconds
at 10,000 trials. A study's change marker
(:func:`cellsearch.search.optuna_adapter.bulk_read.change_markers`) is a grouped query on
the trials table alone, several times cheaper, and changes whenever the counts or the
best trial can: a trial started, finished or was requeued (cellsearch writes a trial's
attributes before its outcome). So the counts and the best trial are computed once per
change of the study and served from a
:class:`~cellsearch.service.store.marker_cache.MarkerCache` in between; each API process
keeps its own.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine

from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.record import TrialRecord
from cellsearch.service.store.db import database_key, session_scope
from cellsearch.service.store.marker_cache import FRESH, MarkerCache, MarkerMemo
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.studies.operations import TrialCounts, counts_on, read_stored

MAX_STUDIES = 1024  # entries are small: a few counts and one trial record


@dataclass
class SummaryCache:
    """Counts and best trial per study, each valid for one change marker."""

    counts: MarkerCache[TrialCounts] = field(default_factory=lambda: MarkerCache(MAX_STUDIES))
    best: MarkerCache[TrialRecord | None] = field(default_factory=lambda: MarkerCache(MAX_STUDIES))


def study_summary(
    *, engine: Engine, name: str, cache: SummaryCache, markers: MarkerMemo = FRESH
) -> tuple[StudyRecord, TrialCounts, TrialRecord | None]:
    """The record of study ``name``, its trial counts and its best trial (one transaction).

    Raises:
        NotFound: no such study.
    """
    with session_scope(engine) as session:
        stored = read_stored(session, engine, name, markers)
        record, conn = stored.record, session.connection()
        key, marker = _key(engine, record), stored.marker
        counts = cache.counts.get(key, marker, lambda: counts_on(conn, [record.name])[record.name])
        best = cache.best.get(key, marker, lambda: _best(conn, stored.study_id))
        return record, counts, best


def study_counts(
    *,
    engine: Engine,
    records: Sequence[StudyRecord],
    cache: SummaryCache,
    markers: MarkerMemo = FRESH,
) -> dict[str, TrialCounts]:
    """Trial counts of each study in ``records``: one marker query, one aggregate over the
    studies that changed since they were last counted."""
    with session_scope(engine) as session:
        conn = session.connection()
        ids = bulk_read.find_study_ids(conn, [r.name for r in records])
        changes = markers.markers(conn, database_key(engine), list(ids.values()))
        wanted: dict[str, tuple[Hashable, Hashable]] = {}
        for r in records:
            study_id = ids.get(r.name)
            trials = () if study_id is None else changes[study_id]
            wanted[r.name] = (_key(engine, r), (r.incarnation, study_id, trials))
        stale = [name for name, (key, mark) in wanted.items() if not cache.counts.peek(key, mark)]
        fresh = counts_on(conn, stale)
        return {
            name: cache.counts.get(key, mark, functools.partial(_counted, fresh, name))
            for name, (key, mark) in wanted.items()
        }


def _counted(fresh: dict[str, TrialCounts], name: str) -> TrialCounts:
    return fresh.get(name, TrialCounts())  # no Optuna study: nothing to count


def _key(engine: Engine, record: StudyRecord) -> tuple[str, str]:
    return database_key(engine), record.name


def _best(conn: Connection, study_id: int) -> TrialRecord | None:
    best = bulk_read.best_trial(conn, study_id)
    return None if best is None else TrialRecord.of(best)
