"""A dry run of ``POST /studies``: every check of a submission, nothing stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from cellsearch.search.errors import SpecError
from cellsearch.search.report.metric import objective_metric
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.api.deps import EngineDep, SettingsDep
from cellsearch.service.api.responses import errors
from cellsearch.service.api.security import READER
from cellsearch.service.store.db import session_scope
from cellsearch.service.store.tables import StudyRecord
from cellsearch.service.studies.labels import readable_spec
from cellsearch.service.studies.spec_checks import spec_problems

router = APIRouter(prefix="/studies", tags=["studies"])


class ValidationOut(BaseModel):
    """What submitting the spec would make."""

    name: str
    name_available: bool = Field(description="False: a study has the name; submit gives 409.")
    n_trials: int
    cell_types: list[str]
    trials_per_cell: int = Field(description="With balanced allocation; the report's n.")
    objective: str = Field(description="The objective in words, e.g. 'validation MSE'.")
    summary: dict[str, str] = Field(description="The spec in words, part by part.")
    limits: dict[str, Any] = Field(description="This server's limits on a spec.")


@router.post(
    "/validate",
    response_model=ValidationOut,
    dependencies=[READER],
    responses=errors(401, 403, 413, 422, 503),
)
def validate_spec(spec: StudySpec, settings: SettingsDep, engine: EngineDep) -> ValidationOut:
    """Check a spec as ``POST /studies`` would, and store nothing.

    422 names each invalid field, this server's limits included; 200 says what the study
    would be, and whether its name is still free.
    """
    problems = spec_problems(spec=spec, settings=settings, engine=engine)
    if problems:
        raise SpecError(problems)
    with session_scope(engine) as session:
        taken = StudyRecord.find(session, spec.name) is not None
    return ValidationOut(
        name=spec.name,
        name_available=not taken,
        n_trials=spec.budget.n_trials,
        cell_types=spec.cell_types,
        trials_per_cell=spec.trials_per_cell,
        objective=objective_metric(spec).label,
        summary=readable_spec(spec),
        limits=settings.limits().model_dump(),
    )
