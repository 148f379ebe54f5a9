"""Every check a submitted spec passes before a study is made (shared by submit and
the dry run): a name the API does not use for a path of its own, this server's limits,
the uploaded data set it names, the precision the live workers can honour, the studies
its warm start names."""

from __future__ import annotations

from sqlalchemy import Engine

from cellsearch.search.errors import FieldError
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.datasets.operations import check_dataset_task
from cellsearch.service.settings import Settings
from cellsearch.service.studies.warm_start import warm_start_problems
from cellsearch.service.workers.roster import check_precision

# names that are fixed paths under /api/v1/studies/ (``POST /studies/validate`` is the dry
# run, ``POST /studies/import`` an import), so that no study's own path can be one of them
RESERVED_STUDY_NAMES = frozenset({"validate", "import"})


def spec_problems(*, spec: StudySpec, settings: Settings, engine: Engine) -> list[FieldError]:
    """One error per field of ``spec`` that this deployment refuses (empty: accepted)."""
    limits = settings.limits()
    errors = (
        _name_problems(spec.name)
        + limits.check(spec)
        + check_dataset_task(engine=engine, spec=spec, limits=limits)
    )
    errors += check_precision(engine, spec, grace_period=settings.grace_period)
    return errors + warm_start_problems(engine=engine, spec=spec)


def _name_problems(name: str) -> list[FieldError]:
    if name not in RESERVED_STUDY_NAMES:
        return []
    return [FieldError(("name",), f"'{name}' is reserved: /api/v1/studies/{name} is an "
                       "endpoint of the API; choose another name", "reserved_name")]  # fmt: skip
