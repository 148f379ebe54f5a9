"""The service's side of a warm start: the studies it names, checked, and its seeds kept.

:func:`warm_start_problems` (run with every check of a submitted spec) reads the studies a
spec's ``warm_start`` names and says, naming ``warm_start.from``, which are missing or
whose search space or objective does not fit (:func:`cellsearch.search.study.seeding.
problems`). :func:`seed_study` chooses the seeds when the study is made, from the studies
as they are then, and keeps them with its Optuna study
(:data:`~cellsearch.search.study.seeding.SNAPSHOT_KEY`), where the workers' samplers read
them and whence they travel with an export.
"""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from pydantic import ValidationError
from sqlalchemy import Engine, select

from cellsearch.search.errors import FieldError, SpecError
from cellsearch.search.optuna_adapter import bulk_read, study_id_of
from cellsearch.search.report.metric import objective_metric
from cellsearch.search.study import seeding
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import StudyRecord

_COMPLETE = bulk_read.TrialFilter(states=[TrialState.COMPLETE])


def warm_start_problems(*, engine: Engine, spec: StudySpec) -> list[FieldError]:
    """Why ``spec``'s warm start cannot be made on this server (empty: it can, or there
    is none)."""
    if spec.warm_start is None:
        return []
    sources = _sources(engine, spec)
    return _measure_problems(spec, sources) or seeding.problems(spec, sources)


def _measure_problems(
    spec: StudySpec, sources: dict[str, seeding.Source | None]
) -> list[FieldError]:
    """A source whose objective measures another quantity (an MSE against a
    cross-entropy): its values would mislead the sampler."""
    mine = objective_metric(spec).label
    errors = []
    for name, source in sources.items():
        theirs = None if source is None else objective_metric(source.spec).label
        if theirs is not None and theirs != mine:
            msg = f"{name}: its objective is the {theirs}, this study's the {mine}"
            errors.append(FieldError(("warm_start", "from"), msg, "incompatible_study"))
    return errors


def seed_study(
    study: optuna.Study, spec: StudySpec, *, engine: Engine, storage: optuna.storages.BaseStorage
) -> None:
    """Choose the seeds of a study just made from ``spec`` and keep them with it.

    Raises:
        SpecError: a study the warm start names was deleted or changed meanwhile.
    """
    if spec.warm_start is None:
        return
    sources = _sources(engine, spec)
    errors = _measure_problems(spec, sources) or seeding.problems(spec, sources)
    if errors:
        raise SpecError(errors)
    seeds = seeding.choose(spec, [s for s in sources.values() if s is not None])
    storage.set_study_system_attr(study_id_of(study), seeding.SNAPSHOT_KEY, seeds.to_json())


def _sources(engine: Engine, spec: StudySpec) -> dict[str, seeding.Source | None]:
    """Each study the warm start names, with its completed trials (None: no such study,
    or one whose stored spec this version cannot read)."""
    assert spec.warm_start is not None
    names = list(spec.warm_start.from_)
    found: dict[str, seeding.Source | None] = dict.fromkeys(names)
    with session_scope(engine) as session:
        records = list(session.scalars(select(StudyRecord).where(StudyRecord.name.in_(names))))
        conn = session.connection()
        ids = bulk_read.find_study_ids(conn, names)
        for record in records:
            study_id = ids.get(record.name)
            try:
                source_spec = record.study_spec()
            except ValidationError:
                continue
            if study_id is None:
                continue
            trials = bulk_read.read_trials(conn, study_id, _COMPLETE)
            found[record.name] = seeding.Source(record.name, source_spec, trials)
    return found
