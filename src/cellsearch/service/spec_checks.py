"""Every check a submitted spec passes before a study is made (shared by submit and
the dry run): this server's limits, the uploaded data set it names, the precision the
live workers can honour."""

from __future__ import annotations

from sqlalchemy import Engine

from cellsearch.search.errors import FieldError
from cellsearch.search.study.spec import StudySpec
from cellsearch.service.datasets import check_dataset_task
from cellsearch.service.registry import check_precision
from cellsearch.service.settings import Settings


def spec_problems(*, spec: StudySpec, settings: Settings, engine: Engine) -> list[FieldError]:
    """One error per field of ``spec`` that this deployment refuses (empty: accepted)."""
    limits = settings.limits()
    errors = limits.check(spec) + check_dataset_task(engine=engine, spec=spec, limits=limits)
    return errors + check_precision(engine, spec, grace_period=settings.grace_period)
