"""Suite operations behind the API and the CLI (keyword-only, no HTTP here).

A suite makes one ordinary study per task (:mod:`cellsearch.service.suites.spec`); its
lifecycle actions apply to every study it made, and its report ranks cell types over the
finished ones (:mod:`cellsearch.search.report.suite`).

Creating a suite is all or nothing: every name is checked first; the Optuna studies are
made next, then the suite and all its study records are written in one transaction, so
no worker sees any study before all exist; on any failure the Optuna studies already
made are deleted again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from cellsearch.search.errors import FieldError
from cellsearch.search.optuna_adapter import bulk_read
from cellsearch.search.report.suite import SuiteTask, build_suite_report, study_report_for_suite
from cellsearch.search.report.suite_model import SuiteReport
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.artifacts.operations import detach
from cellsearch.service.datasets.operations import (
    check_dataset_exists,
    check_dataset_task,
    confirm_dataset,
    list_datasets,
)
from cellsearch.service.errors import Conflict, Forbidden, NotFound
from cellsearch.service.reports.study import study_context
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import connection_scope, session_scope
from cellsearch.service.store.tables import StudyRecord, SuiteRecord, utcnow
from cellsearch.service.studies.labels import label_study
from cellsearch.service.studies.operations import TRANSITIONS, TrialCounts, trial_counts
from cellsearch.service.studies.warm_start import seed_study, warm_start_problems
from cellsearch.service.suites.page import render_suite_html
from cellsearch.service.suites.spec import SuitePlan, parse_suite
from cellsearch.service.workers.roster import check_precision
from cellsearch.service.workers.wakeup import notify_work

MISSING = "missing"
STUDY_PAGE = "/api/v1/studies/{name}/report.html"


@dataclass
class SuiteStudy:
    """One task of a suite with its study (``record`` None: the study was deleted)."""

    task: str
    name: str
    kind: str
    record: StudyRecord | None
    counts: TrialCounts

    @property
    def status(self) -> str:
        """The study's status, or ``"missing"``."""
        return MISSING if self.record is None else self.record.status


@dataclass
class SuiteView:
    """A suite with its studies in task order."""

    record: SuiteRecord
    studies: list[SuiteStudy]

    @property
    def status(self) -> str:
        """running while any study runs; then paused; completed when all are; else cancelled."""
        statuses = {s.status for s in self.studies if s.record is not None}
        for status in ("running", "paused"):
            if status in statuses:
                return status
        if not statuses:
            return "empty"
        return "completed" if statuses == {"completed"} else "cancelled"


def validate_suite(data: Any, *, engine: Engine, settings: Settings) -> SuitePlan:
    """Check a submitted suite spec as a single study is checked, for every task.

    Raises:
        SpecError: every problem, naming the task (index and kind) or the template field.
    """
    names = None
    if isinstance(data, dict) and any(
        isinstance(t, dict) and t.get("kind") == "dataset" for t in data.get("tasks") or []
    ):
        names = {d.id: d.name for d in list_datasets(engine=engine)}
    limits = settings.limits()

    def datasets(spec: StudySpec) -> list[FieldError]:
        return check_dataset_task(engine=engine, spec=spec, limits=limits)

    def precision(spec: StudySpec) -> list[FieldError]:
        return check_precision(engine, spec, grace_period=settings.grace_period)

    def warm_start(spec: StudySpec) -> list[FieldError]:
        return warm_start_problems(engine=engine, spec=spec)

    return parse_suite(
        data,
        limits=limits,
        max_tasks=settings.max_suite_tasks,
        dataset_names=names,
        checks=(datasets, precision, warm_start),
    )


def _clashes(engine: Engine, storage: optuna.storages.RDBStorage, plan: SuitePlan) -> list[str]:
    names = [s.name for s in plan.studies]
    with session_scope(engine) as session:
        ours = set(session.scalars(select(StudyRecord.name).where(StudyRecord.name.in_(names))))
    bare = set(optuna.get_all_study_names(storage)) & set(names)
    return [n for n in names if n in ours | bare]


def create_suite(
    *,
    engine: Engine,
    storage: optuna.storages.RDBStorage,
    plan: SuitePlan,
    created_by: str | None = None,
) -> SuiteRecord:
    """Create the suite and all its studies, or nothing (``created_by``: the API key's name,
    recorded on the suite and each of its studies).

    Raises:
        Conflict: the suite's name, or the name of any study it would make, is taken.
    """
    with session_scope(engine) as session:
        if SuiteRecord.find(session, plan.name) is not None:
            raise Conflict(f"suite {plan.name!r} already exists")
    taken = _clashes(engine, storage, plan)
    if taken:
        raise Conflict(f"suite {plan.name!r} would make studies that exist: {', '.join(taken)}")
    made: list[str] = []
    try:
        for spec in plan.studies:
            study = optuna.create_study(
                study_name=spec.name, storage=storage, direction=spec.objective.direction
            )
            made.append(spec.name)
            label_study(study, spec, engine=engine)  # the objective's name, for the dashboard
            seed_study(study, spec, engine=engine, storage=storage)  # a warm start's seeds
        return _write_records(engine, plan, created_by)
    except optuna.exceptions.DuplicatedStudyError:
        _drop_optuna(storage, made)
        raise Conflict(f"a study of suite {plan.name!r} was created meanwhile") from None
    except BaseException:
        _drop_optuna(storage, made)
        raise


def _write_records(engine: Engine, plan: SuitePlan, created_by: str | None) -> SuiteRecord:
    """The suite and its study records, in one transaction."""
    suite = SuiteRecord(
        name=plan.name,
        description=plan.description,
        spec=plan.stored_spec(),
        studies=[s.name for s in plan.studies],
        created_by=created_by,
    )
    try:
        with session_scope(engine) as session:
            session.add(suite)
            session.flush()  # the suite's id, for the studies' link
            records = [
                StudyRecord.new(spec, created_by=created_by, suite_id=suite.id)
                for spec in plan.studies
            ]
            session.add_all(records)
            session.flush()  # the rows refer to their data sets from here (see confirm_dataset)
            for record in records:
                confirm_dataset(session, record)
                notify_work(session.connection(), record.name)  # workers wake at commit
    except IntegrityError:
        for spec in plan.studies:  # PostgreSQL: a data set was deleted meanwhile
            check_dataset_exists(engine=engine, spec=spec)
        raise Conflict(f"suite {plan.name!r} or one of its studies already exists") from None
    return suite


def _drop_optuna(storage: optuna.storages.RDBStorage, names: Sequence[str]) -> None:
    for name in names:
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=storage)


def _views(engine: Engine, suites: Sequence[SuiteRecord]) -> list[SuiteView]:
    """The studies of each suite, with their trial counts (three queries in all)."""
    ids = [s.id for s in suites]
    with session_scope(engine) as session:
        members = session.scalars(select(StudyRecord).where(StudyRecord.suite_id.in_(ids)))
        by_key = {(r.suite_id, r.name): r for r in members}
    counts = trial_counts(engine=engine, names=[name for _, name in by_key])
    views = []
    for suite in suites:
        prefix = len(suite.name) + 1
        studies = []
        for name, task in zip(suite.studies, suite.spec["tasks"], strict=True):
            record = by_key.get((suite.id, name))
            count = counts.get(name, TrialCounts()) if record else TrialCounts()
            studies.append(SuiteStudy(name[prefix:], name, task["kind"], record, count))
        views.append(SuiteView(suite, studies))
    return views


def get_suite(*, engine: Engine, name: str) -> SuiteView:
    """The suite called ``name`` with its studies (NotFound otherwise)."""
    with session_scope(engine) as session:
        record = SuiteRecord.find_or_raise(session, name)
    return _views(engine, [record])[0]


def list_suites(*, engine: Engine, offset: int, limit: int) -> tuple[list[SuiteView], int]:
    """A page of suites, newest first, and the total count."""
    with session_scope(engine) as session:
        total = session.scalar(select(func.count()).select_from(SuiteRecord)) or 0
        rows = list(
            session.scalars(
                select(SuiteRecord).order_by(SuiteRecord.id.desc()).offset(offset).limit(limit)
            )
        )
    return _views(engine, rows), total


def _owned_suite(engine: Engine, name: str, owner: str | None) -> SuiteRecord:
    """The suite called ``name``, if ``owner`` (None: anyone) may act on it.

    Raises:
        NotFound: no such suite.
        Forbidden: another key created it.
    """
    with session_scope(engine) as session:
        suite = SuiteRecord.find_or_raise(session, name)
    if owner is not None and suite.created_by != owner:
        by = f"key {suite.created_by!r}" if suite.created_by else "no key (an open API)"
        raise Forbidden(
            f"suite {name!r} was created by {by}; a submitter acts only on its own suites "
            "(an admin key may act on any)"
        )
    return suite


def change_suite_status(*, engine: Engine, name: str, action: str, owner: str | None = None) -> int:
    """Pause, resume or cancel every study of the suite to which the action applies, in one
    conditional UPDATE (concurrent calls each get one coherent answer, as for a study).

    Returns:
        How many studies changed.

    Raises:
        NotFound: no such suite.
        Forbidden: another key than ``owner`` created it.
        Conflict: the action applies to none of its studies.
    """
    allowed, target = TRANSITIONS[action]
    suite = _owned_suite(engine, name, owner)
    with connection_scope(engine) as conn:
        changed = conn.execute(
            update(StudyRecord)
            .where(StudyRecord.suite_id == suite.id, StudyRecord.status.in_(allowed))
            .values(status=target, updated_at=utcnow())
        ).rowcount
        if changed and target == "running":
            notify_work(conn, name)  # resumed: idle workers wake at commit
        if changed:
            return int(changed)
        statuses = conn.scalars(
            select(StudyRecord.status).where(StudyRecord.suite_id == suite.id).distinct()
        ).all()
    listed = ", ".join(sorted(statuses)) or "none left"
    raise Conflict(f"cannot {action} suite {name!r}: its studies are {listed}")


def delete_suite(
    *, engine: Engine, storage: optuna.storages.RDBStorage, name: str, owner: str | None = None
) -> list[str]:
    """Delete the suite, its study records, then their Optuna studies and trials.

    Returns:
        The names of the studies deleted.

    Raises:
        NotFound: no such suite (or it was deleted meanwhile).
        Forbidden: another key than ``owner`` created it.
    """
    suite = _owned_suite(engine, name, owner)
    with connection_scope(engine) as conn:
        names = list(conn.scalars(select(StudyRecord.name).where(StudyRecord.suite_id == suite.id)))
        conn.execute(detach(select(StudyRecord.id).where(StudyRecord.suite_id == suite.id)))
        conn.execute(delete(StudyRecord).where(StudyRecord.suite_id == suite.id))
        if not conn.execute(delete(SuiteRecord).where(SuiteRecord.id == suite.id)).rowcount:
            raise NotFound(f"suite {name!r} not found")
    _drop_optuna(storage, names)
    return names


def suite_report(*, engine: Engine, storage: optuna.storages.RDBStorage, name: str) -> SuiteReport:
    """The cross-task report of suite ``name``, from its finished studies' trials."""
    view = get_suite(engine=engine, name=name)
    tasks = []
    for study in view.studies:
        report = None
        if study.record is not None and study.record.status == "completed":
            context = study_context(engine, study.record.study_spec(), study.record.status)
            with connection_scope(engine) as conn:  # the bulk reader: no Optuna round trips
                study_id = bulk_read.find_study_id(conn, study.name)
                trials = [] if study_id is None else bulk_read.read_trials(conn, study_id)
            report = study_report_for_suite(trials, context)
        n_trials = study.record.n_trials if study.record else 0
        tasks.append(
            SuiteTask(study.task, study.name, study.kind, study.status,
                      study.counts.finished, n_trials, report)
        )  # fmt: skip
    spec = view.record.spec
    cells = spec["study"]["space"]["cell_type"]
    comparison = spec["study"].get("comparison") or {}
    return build_suite_report(
        view.record.name,
        tasks,
        cell_types=cells if isinstance(cells, list) else [cells],
        description=view.record.description,
        rank_unlearned=bool(comparison.get("rank_unlearned", False)),
    )


def suite_report_html(*, engine: Engine, storage: optuna.storages.RDBStorage, name: str) -> str:
    """The cross-task report of suite ``name`` as an HTML page."""
    report = suite_report(engine=engine, storage=storage, name=name)
    return render_suite_html(report, study_url=STUDY_PAGE)
