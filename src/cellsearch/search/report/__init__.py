"""The comparison report of a study's cell types (see :mod:`.build`)."""

from cellsearch.search.report.build import SCHEMA_VERSION, ReportContext, build_report

__all__ = ["SCHEMA_VERSION", "ReportContext", "build_report"]
