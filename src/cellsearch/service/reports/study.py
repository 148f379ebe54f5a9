"""The comparison report of a stored study (JSON and HTML), built once per change.

:func:`report_state` reads what identifies the current report of a study: its service
record and a marker of its trials
(:func:`cellsearch.search.optuna_adapter.bulk_read.change_markers`: per state, how many
trials and the last completion). :func:`cached_report` returns the
report for that state from the process's :class:`~cellsearch.service.store.marker_cache.
MarkerCache`, building it (trials read in bulk) when the state changed. The state's
digest is the responses' ETag, so a client holding the current report gets a 304.
:func:`study_context` measures the task's baseline where it needs the data (an upload is
read from the database), once per process (:mod:`cellsearch.search.tasks.baselines`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import Engine

import cellsearch
from cellsearch.search.errors import DatasetError
from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.report import ReportContext, StudyReport, build_report
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.baselines import objective_baseline
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.service.datasets.operations import dataset_content
from cellsearch.service.errors import Conflict, NotFound
from cellsearch.service.reports.assets import plotly_src
from cellsearch.service.reports.page import render_report_html
from cellsearch.service.store.db import connection_scope, session_scope
from cellsearch.service.store.marker_cache import FRESH, MarkerCache, MarkerMemo
from cellsearch.service.studies.operations import read_stored
from cellsearch.service.studies.states import head_of_queue, shown_status, waiting_notes


@dataclass(frozen=True)
class ReportState:
    """What the current report of a study depends on (read with one record and one query)."""

    key: tuple[str, str]  # (database, study name): the cache's key
    marker: tuple[Any, ...]
    study_id: int  # Optuna's
    spec: dict[str, Any]
    status: str
    note: str | None = None  # what holds the study up (no live worker): for the page only

    @property
    def etag(self) -> str:
        """An entity tag of the report in this state (see :attr:`page_etag` for the page)."""
        return '"' + hashlib.sha256(repr(self.marker).encode()).hexdigest()[:24] + '"'

    @property
    def page_etag(self) -> str:
        """The page's entity tag: the report's, and whether a note holds the study up."""
        return self.etag[:-1] + ("-waiting" if self.note else "") + '-html"'

    def page_etag_of(self, models: Sequence[ArtifactEntry]) -> str:
        """The tag of the page that links ``models`` (the best kept model of each cell
        type): :attr:`page_etag`, and which models those are."""
        if not models:
            return self.page_etag
        kept = hashlib.sha256(",".join(m.id for m in models).encode()).hexdigest()[:12]
        return f'{self.page_etag[:-1]}-{kept}"'


@dataclass
class BuiltReport:
    """A built report, its JSON body, and its page once asked for."""

    report: StudyReport
    body: bytes
    study_id: int  # Optuna's, for the link to the study in optuna-dashboard
    _html: dict[tuple[str | None, str | None, tuple[ArtifactEntry, ...]], str] = field(
        default_factory=dict, repr=False
    )

    def html(
        self,
        dashboard_url: str | None = None,
        note: str | None = None,
        models: Sequence[ArtifactEntry] = (),
    ) -> str:
        """The report page, its trials linked to optuna-dashboard's root ``dashboard_url``
        when one is given, its banner carrying ``note``, with a download link to each of
        ``models`` (rendered on first use; two racing renders give equal pages)."""
        key = (dashboard_url, note, tuple(models))
        if key not in self._html:
            study_page = None
            if dashboard_url:
                study_page = f"{dashboard_url.rstrip('/')}/dashboard/studies/{self.study_id}"
            self._html[key] = render_report_html(
                self.report,
                plotly_js=plotly_src(),
                dashboard_url=study_page,
                note=note,
                models=models,
            )
        return self._html[key]


def report_state(
    *,
    engine: Engine,
    name: str,
    markers: MarkerMemo = FRESH,
    grace_period: float | None = None,
) -> ReportState:
    """The state of study ``name``'s report: its record and its trials' change marker
    (from ``markers``, which may reuse a recent one); with ``grace_period`` (which says
    which workers are alive), the note of a study waiting with no live worker.

    Raises:
        NotFound: no such study (or its Optuna study is gone).
    """
    with session_scope(engine) as session:
        stored = read_stored(session, engine, name, markers)
        record = stored.record
        running = bulk_read.count_in_marker(stored.trials, [TrialState.RUNNING])
        head = head_of_queue(engine=engine) if record.status == "running" else None
        status = shown_status(record, running_trials=running, head=head)  # queued, ...
        note = None
        if grace_period is not None:
            waiting = {record.name: running}
            notes = waiting_notes(
                engine=engine, records=[record], running=waiting, grace_period=grace_period
            )
            note = notes[record.name]
        return ReportState(
            key=(stored.database, record.name),
            marker=(cellsearch.__version__, status, *stored.marker),
            study_id=stored.study_id,
            spec=record.spec,
            status=status,
            note=note,
        )


def cached_report(
    *, engine: Engine, state: ReportState, cache: MarkerCache[BuiltReport]
) -> BuiltReport:
    """The report of the study in ``state``: from ``cache``, or built now and kept there."""
    return cache.get(state.key, state.marker, lambda: build_study_report(engine, state))


def study_context(engine: Engine, spec: StudySpec, status: str) -> ReportContext:
    """The report's context of a stored study: its task's baseline measured on the data
    where no closed form gives it, an uploaded data set read from the database."""

    def resolve(dataset_id: str) -> tuple[bytes, str]:
        try:
            return dataset_content(engine=engine, dataset_id=dataset_id)
        except (NotFound, Conflict) as exc:  # gone or corrupted: no baseline, no 5xx
            raise DatasetError(str(exc)) from None

    baseline = objective_baseline(
        spec.task, spec.objective.metric, seed=spec.seed, resolve_dataset=resolve
    )
    return ReportContext.of(spec, status=status, baseline=baseline)


def build_study_report(engine: Engine, state: ReportState) -> BuiltReport:
    """Read every trial of the study in one go and build its report."""
    context = study_context(engine, StudySpec.model_validate(state.spec), state.status)
    with connection_scope(engine) as conn:
        trials = bulk_read.read_trials(conn, state.study_id)
    report = build_report(trials, context)
    return BuiltReport(report=report, body=report.to_json().encode(), study_id=state.study_id)
