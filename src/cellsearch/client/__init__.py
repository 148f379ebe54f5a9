"""The Python client of the cellsearch API, for notebooks and scripts.

``from cellsearch import Client`` (or from here). :class:`Client` submits, follows and
reads studies (suites under ``client.suites``, data sets under ``client.datasets``) and
returns typed records; errors are the classes of :mod:`.errors`. The CLI's client
commands are built on it: one HTTP client.

This package imports httpx, pydantic and PyYAML, and the report's models (pydantic
only); never torch, Optuna, SQLAlchemy, FastAPI, numpy or ``cellsearch.service`` (a test
checks it in a fresh interpreter), so that a laptop that only submits and reads stays
light. numpy is loaded to upload arrays, pandas for data frames (``cellsearch[pandas]``),
plotly for figures.

Modules: :mod:`.client` (the Client), :mod:`.suites`, :mod:`.datasets`, :mod:`.records`
(typed answers), :mod:`.reports` (the typed reports, with HTML, frames and figures),
:mod:`.trial_list`, :mod:`.frames` (pandas), :mod:`.progress` and :mod:`.displays`
(following a study), :mod:`.specs` (spec files), :mod:`.lenient` (reading a newer
server's report), :mod:`.errors`, and the transport (:mod:`._transport`).
"""

from __future__ import annotations

from cellsearch.client.client import Client
from cellsearch.client.errors import (
    ApiError,
    ApiUnavailable,
    ApiUnreachable,
    AuthenticationError,
    ClientError,
    Conflict,
    FieldError,
    InvalidRequest,
    InvalidUrl,
    LocalFileError,
    NotFound,
    NotTheApi,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    UnreadableResponse,
    WaitTimeout,
)
from cellsearch.client.models import KeptModel
from cellsearch.client.records import (
    Cell,
    CellOption,
    Counts,
    Dataset,
    Study,
    StudyDetail,
    Suite,
    SuiteDetail,
    SuiteStudy,
    Task,
    Trial,
    Validation,
    WhoAmI,
)
from cellsearch.client.reports import StudyReport, SuiteReport
from cellsearch.client.specs import load_spec
from cellsearch.client.travel import ImportedStudy
from cellsearch.client.trial_list import TrialList

__all__ = [
    "ApiError",
    "ApiUnavailable",
    "ApiUnreachable",
    "AuthenticationError",
    "Cell",
    "CellOption",
    "Client",
    "ClientError",
    "Conflict",
    "Counts",
    "Dataset",
    "FieldError",
    "ImportedStudy",
    "InvalidRequest",
    "InvalidUrl",
    "KeptModel",
    "LocalFileError",
    "NotFound",
    "NotTheApi",
    "PayloadTooLarge",
    "PermissionDenied",
    "ServiceUnavailable",
    "Study",
    "StudyDetail",
    "StudyReport",
    "Suite",
    "SuiteDetail",
    "SuiteReport",
    "SuiteStudy",
    "Task",
    "Trial",
    "TrialList",
    "UnreadableResponse",
    "Validation",
    "WaitTimeout",
    "WhoAmI",
    "load_spec",
]
