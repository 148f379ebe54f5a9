"""The comparison report of a study's cell types, and the cross-task report of a suite.

- :mod:`.build`: :func:`build_report` and its :class:`ReportContext` (numpy, scipy, optuna).
- :mod:`.model`: :class:`StudyReport`, the report's typed sections (pydantic only);
  :mod:`.suite_model`: :class:`SuiteReport`, likewise.
- :mod:`.suite`: :func:`build_suite_report`, from per-study reports.

Names are loaded on first use, so that a client that only parses reports
(``from cellsearch.search.report.model import StudyReport``) imports neither numpy nor optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cellsearch.search.report.build import ReportContext, build_report
    from cellsearch.search.report.model import SCHEMA_VERSION, StudyReport
    from cellsearch.search.report.suite import SuiteTask, build_suite_report
    from cellsearch.search.report.suite_model import SuiteReport

_MODULES = {
    "build": ("ReportContext", "build_report"),
    "model": ("SCHEMA_VERSION", "StudyReport"),
    "suite": ("SuiteTask", "build_suite_report"),
    "suite_model": ("SuiteReport",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped by module, as _MODULES
    "ReportContext", "build_report",
    "SCHEMA_VERSION", "StudyReport",
    "SuiteTask", "build_suite_report",
    "SuiteReport",
]  # fmt: skip
assert set(__all__) == set(_WHERE)
