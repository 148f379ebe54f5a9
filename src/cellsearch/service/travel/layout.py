"""The study archive's layout: its file names, its ``MANIFEST`` and its ``study.json``.

A study archive is a zip file that holds::

    MANIFEST              JSON: the format and its version, the cellsearch and Optuna
                          versions that wrote it, the study, and every other file with
                          its SHA-256 and size
    study.json            the service's record of the study: its spec, status and budget
                          ledger, its data set and its kept models (what each file is)
    report.json           the comparison report, as built when the study was exported
    optuna.sqlite3        an Optuna SQLite storage with the study and all its trials
                          (parameters, values, learning curves, every attribute):
                          ``optuna-dashboard sqlite:///optuna.sqlite3`` opens it
    datasets/<sha256>.npz the uploaded data set the task reads (or .csv), named by the
                          SHA-256 of its bytes
    models/<artifact id>  each kept model (safetensors), named as Optuna's file-system
                          artifact store names it: ``optuna-dashboard
                          sqlite:///optuna.sqlite3 --artifact-dir models`` serves them

No other name is allowed (no folder, no path out of the archive).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT = "cellsearch-study-archive"
FORMAT_VERSION = 1
"""The layout's version; an archive of a newer one is refused, with what to upgrade."""
MANIFEST = "MANIFEST"
STUDY = "study.json"
REPORT = "report.json"
OPTUNA = "optuna.sqlite3"
REQUIRED = (STUDY, REPORT, OPTUNA)
SHA256 = r"^[0-9a-f]{64}$"
ARTIFACT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_DATASET = re.compile(r"datasets/[0-9a-f]{64}\.(npz|csv)")
_MODEL = re.compile(r"models/" + ARTIFACT_ID.strip("^$"))
EXTENSION = ".cellsearch.zip"
"""How an exported archive's file name ends."""


def dataset_file(sha256: str, fmt: str) -> str:
    """The archive's name of a data set's file."""
    return f"datasets/{sha256}.{fmt}"


def model_file(artifact_id: str) -> str:
    """The archive's name of a kept model's file."""
    return f"models/{artifact_id}"


def allowed(name: str) -> bool:
    """Whether ``name`` is a file name of the layout (nothing else is ever unpacked)."""
    fixed = name in (MANIFEST, *REQUIRED)
    return fixed or bool(_DATASET.fullmatch(name) or _MODEL.fullmatch(name))


class _Part(BaseModel):
    """A part of the archive's JSON: unknown keys are ignored (a later layout may add
    some), the known ones checked."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class FileEntry(_Part):
    """One file of the archive as the manifest states it."""

    sha256: str = Field(pattern=SHA256)
    size: int = Field(ge=0)


class Manifest(_Part):
    """The archive's ``MANIFEST``."""

    format: Literal["cellsearch-study-archive"]
    format_version: int = Field(ge=1)
    cellsearch: str
    optuna: str
    optuna_datetimes: Literal["utc", "local"] = Field(
        description="How optuna.sqlite3 stores trial datetimes: naive UTC (Optuna 5) or the "
        "exporting machine's naive local time (Optuna 4)."
    )
    study: str
    exported_at: datetime
    files: dict[str, FileEntry]


class DatasetEntry(_Part):
    """The uploaded data set the study's task reads."""

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    format: Literal["npz", "csv"]
    kind: str = Field(max_length=16)
    sha256: str = Field(pattern=SHA256)


class ModelEntry(_Part):
    """A kept model: its artifact id (its file's name) and what the index records."""

    id: str = Field(pattern=ARTIFACT_ID)
    trial_number: int = Field(ge=0)
    cell_type: str | None = Field(default=None, max_length=64)
    value: float | None = None
    epoch: int | None = None
    reevaluation: bool = False
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=SHA256)


class StudyEntry(_Part):
    """The service's record of the study (``study.json``)."""

    name: str
    spec: dict[str, Any]
    status: Literal["running", "paused", "cancelled", "completed"]
    n_trials: int = Field(ge=1)
    claimed: int = Field(ge=0)
    issued: int = Field(ge=0)
    reevaluations: int = Field(ge=0)
    reevaluation_base: int | None = Field(default=None, ge=0)
    created_at: datetime
    created_by: str | None = None
    datasets: list[DatasetEntry] = Field(default_factory=list, max_length=1)
    models: list[ModelEntry] = Field(default_factory=list)
