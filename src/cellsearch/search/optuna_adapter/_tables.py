"""Optuna's tables, as its own definitions give them: the one import of ``_rdb.models``.

Optuna's ``optuna.storages._rdb.models`` declares its schema as SQLAlchemy ORM classes.
The adapter reads and writes Optuna's tables through those definitions (never through
table names typed in SQL), so a renamed column fails when this module or
:func:`~cellsearch.search.optuna_adapter.check_internals` runs, not as a wrong answer
later. :data:`USED` lists every class and column the adapter touches; the check reads it.
"""

from __future__ import annotations

import optuna

from cellsearch.search.optuna_adapter._versions import internals_error

try:
    from optuna.storages._rdb import models
except ImportError as exc:  # no fallback: without its tables the adapter cannot work
    raise internals_error(["module optuna.storages._rdb.models (its table classes)"]) from exc

# ORM class -> the columns of its table the adapter reads or writes.
USED: dict[str, tuple[str, ...]] = {
    "StudyModel": ("study_id", "study_name"),
    "StudyDirectionModel": ("study_id", "objective", "direction"),
    "StudyUserAttributeModel": ("study_id", "key", "value_json"),
    "StudySystemAttributeModel": ("study_id", "key", "value_json"),
    "TrialModel": (
        "trial_id",
        "number",
        "study_id",
        "state",
        "datetime_start",
        "datetime_complete",
    ),
    "TrialParamModel": (
        "param_id",
        "trial_id",
        "param_name",
        "param_value",
        "distribution_json",
    ),
    "TrialValueModel": ("trial_id", "objective", "value", "value_type"),
    "TrialIntermediateValueModel": (
        "trial_id",
        "step",
        "intermediate_value",
        "intermediate_value_type",
    ),
    "TrialUserAttributeModel": ("trial_id", "key", "value_json"),
    "TrialSystemAttributeModel": ("trial_id", "key", "value_json"),
    "TrialHeartbeatModel": ("trial_id", "heartbeat"),
}
# ORM class -> the unique key an upsert's ON CONFLICT names.
UNIQUE: dict[str, tuple[str, ...]] = {
    "TrialUserAttributeModel": ("trial_id", "key"),
    "TrialHeartbeatModel": ("trial_id",),
    "TrialParamModel": ("trial_id", "param_name"),
    "TrialValueModel": ("trial_id", "objective"),
    "TrialIntermediateValueModel": ("trial_id", "step"),
}
# Stored names of the value kinds (Optuna stores enums by name): finite, or a special.
VALUE_KINDS = ("FINITE", "INF_POS", "INF_NEG")
STEP_KINDS = ("FINITE", "INF_POS", "INF_NEG", "NAN")
# A trial's datetimes are stored as naive UTC from Optuna 5.0 on (its ORM class maps them
# to ``_datetime_start_utc``), as naive local time before: decided by the version, and
# checked against the table class by check_internals.
DATETIMES_IN_UTC = int(optuna.__version__.split(".")[0]) >= 5
UTC_DATETIME_ATTR = "_datetime_start_utc"

STUDIES = models.StudyModel.__table__
DIRECTIONS = models.StudyDirectionModel.__table__
STUDY_USER = models.StudyUserAttributeModel.__table__
STUDY_SYSTEM = models.StudySystemAttributeModel.__table__
TRIALS = models.TrialModel.__table__
PARAMS = models.TrialParamModel.__table__
VALUES = models.TrialValueModel.__table__
STEPS = models.TrialIntermediateValueModel.__table__
USER = models.TrialUserAttributeModel.__table__
SYSTEM = models.TrialSystemAttributeModel.__table__
HEARTBEATS = models.TrialHeartbeatModel.__table__
VALUE_TYPE = models.TrialValueModel.TrialValueType
