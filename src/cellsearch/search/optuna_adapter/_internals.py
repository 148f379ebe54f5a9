"""Checks that every Optuna internal the adapter uses is there, with the shape it expects.

The adapter imports Optuna's private modules directly (a missing one fails at import),
but an attribute or a column that moves would otherwise show only when it is used:
late (a worker's first re-evaluation), or as a wrong answer. :func:`check_internals`
looks at all of them at once, in about a millisecond, and raises one
:class:`~cellsearch.search.errors.OptunaInternalsError` that names each one that moved and
the versions the adapter was tested against. Workers and the API run it at start-up.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Iterator
from operator import attrgetter
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import UniqueConstraint

from cellsearch.search.optuna_adapter import _tables
from cellsearch.search.optuna_adapter._artifacts import (
    attach_study_artifact,
    forget_study_artifact,
    study_artifacts,
)
from cellsearch.search.optuna_adapter._trials_study import IN_MEMORY_LOGGER, quiet_in_memory_storage
from cellsearch.search.optuna_adapter._versions import TESTED_OPTUNA, internals_error, is_tested
from cellsearch.search.optuna_adapter._writes import _CachedStorage

log = logging.getLogger(__name__)

# (class, method, its parameters after self, whether the class must implement it): the
# private methods called, and the methods whose signatures the per-cell view copies
_METHODS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("optuna.Study", "_pop_waiting_trial_id", (), True),
    ("optuna.Study", "_get_trials", ("deepcopy", "states", "use_cache"), True),
    ("optuna.storages.RDBStorage", "_create_new_trial", ("study_id", "template_trial"), True),
    (
        "optuna.storages.RDBStorage",
        "_get_trials",
        ("study_id", "states", "included_trial_ids", "trial_id_greater_than"),
        True,
    ),
    ("optuna.storages.RDBStorage", "check_trial_is_updatable", ("trial_id", "trial_state"), True),
    # overridden by AdapterStorage, which Optuna's cache and trials call with these
    ("optuna.storages.RDBStorage", "get_trial", ("trial_id",), True),
    (
        "optuna.storages.RDBStorage",
        "_set_trial_param",
        ("trial_id", "param_name", "param_value_internal", "distribution", "previous_distribution"),
        True,
    ),
    (
        "optuna.storages.RDBStorage",
        "set_trial_intermediate_value",
        ("trial_id", "step", "intermediate_value"),
        True,
    ),
    ("optuna.storages.RDBStorage", "set_trial_state_values", ("trial_id", "state", "values"), True),
    ("optuna.storages.BaseStorage", "get_all_trials", ("study_id", "deepcopy", "states"), False),
    ("optuna.storages.BaseStorage", "get_n_trials", ("study_id", "state"), False),
)


def check_internals() -> None:
    """Verify every Optuna internal the adapter relies on (see the package docstring).

    Cheap (no database; one in-memory study and trial are made to look at the attributes
    Optuna sets on them); run it where a moved internal would otherwise fail late or
    silently: worker and API start-up. An Optuna outside the tested series that passes
    is logged as a warning.

    Raises:
        OptunaInternalsError: one or more internals are missing or changed; the message
            names each of them, the installed version and the tested ones.
    """
    problems = [*_table_problems(), *_stored_form_problems(), *_api_problems(), *_probe_problems()]
    if problems:
        raise internals_error(problems)
    if not is_tested():
        log.warning("Optuna %s is not among the versions cellsearch's Optuna adapter was "
                    "tested against (%s); its internals pass the check",
                    optuna.__version__, ", ".join(TESTED_OPTUNA))  # fmt: skip


def _table_problems() -> Iterator[str]:
    """Optuna's table classes, and the columns and unique keys the adapter uses."""
    models = _tables.models
    for name, columns in _tables.USED.items():
        table = getattr(getattr(models, name, None), "__table__", None)
        if table is None:
            yield f"table class optuna.storages._rdb.models.{name}"
            continue
        for column in columns:
            if column not in table.c:
                yield f"column {table.name}.{column} (optuna.storages._rdb.models.{name})"
        key = _tables.UNIQUE.get(name)
        if key is not None and not any(
            tuple(c.name for c in constraint.columns) == key
            for constraint in table.constraints
            if isinstance(constraint, UniqueConstraint)
        ):
            yield f"unique key ({', '.join(key)}) of table {table.name}"


def _stored_form_problems() -> Iterator[str]:
    """How values are stored: enums by name, trial datetimes in the version's time zone."""
    models = _tables.models
    enums = [
        ("TrialModel", "state", [s.name for s in TrialState]),
        ("StudyDirectionModel", "direction", [d.name for d in StudyDirection]),
        ("TrialValueModel", "value_type", list(_tables.VALUE_KINDS)),
        ("TrialIntermediateValueModel", "intermediate_value_type", list(_tables.STEP_KINDS)),
    ]
    for name, column, stored in enums:
        table = getattr(getattr(models, name, None), "__table__", None)
        if table is None or column not in table.c:
            continue  # reported by _table_problems
        if list(getattr(table.c[column].type, "enums", ())) != stored:
            yield f"column {table.name}.{column} stored as the names {stored}"
    utc = hasattr(getattr(models, "TrialModel", None), _tables.UTC_DATETIME_ATTR)
    if utc != _tables.DATETIMES_IN_UTC:  # every datetime read would be shifted
        if _tables.DATETIMES_IN_UTC:
            yield f"trial datetimes stored as naive UTC (TrialModel.{_tables.UTC_DATETIME_ATTR})"
        else:
            yield f"trial datetimes as naive local time (no TrialModel.{_tables.UTC_DATETIME_ATTR})"


def _api_problems() -> Iterator[str]:
    """Private methods and the signatures of the methods the per-cell view mirrors."""
    for owner, name, params, concrete in _METHODS:
        method = getattr(attrgetter(owner.removeprefix("optuna."))(optuna), name, None)
        if not callable(method) or (concrete and getattr(method, "__isabstractmethod__", False)):
            yield f"method {owner}.{name}"
        elif list(inspect.signature(method).parameters)[1:] != list(params):
            yield f"method {owner}.{name} taking ({', '.join(params)})"
    try:
        in_memory = importlib.import_module("optuna.storages._in_memory")
    except ImportError:
        yield "module optuna.storages._in_memory (its logger)"
    else:
        if getattr(getattr(in_memory, "_logger", None), "name", None) != IN_MEMORY_LOGGER:
            yield f"the in-memory storage's logger named {IN_MEMORY_LOGGER!r}"


def _probe_problems() -> Iterator[str]:
    """The attributes Optuna sets on its objects, looked at on an in-memory study."""
    try:
        study, trial, cached = _probe()
    except Exception as exc:  # an Optuna whose constructors changed: name it, do not hide it
        yield f"an in-memory study, trial and storage cache could not be made ({exc!r})"
        return
    checks: list[tuple[str, Callable[[], bool]]] = [
        ("attribute optuna.Study._study_id", lambda: isinstance(study._study_id, int)),
        ("attribute optuna.Study._storage", lambda: hasattr(study, "_storage")),
        (
            "attribute optuna.Study._thread_local.cached_all_trials",
            lambda: hasattr(study._thread_local, "cached_all_trials"),
        ),
        ("attribute optuna.Trial._trial_id", lambda: isinstance(trial._trial_id, int)),
        (
            "attribute optuna.Trial._cached_frozen_trial (a FrozenTrial)",
            lambda: isinstance(trial._cached_frozen_trial, FrozenTrial),
        ),
        (
            "attribute optuna.trial.FrozenTrial._trial_id",
            lambda: isinstance(trial._cached_frozen_trial._trial_id, int),
        ),
        (
            "attribute optuna.storages._cached_storage._CachedStorage._backend",
            lambda: cached[1] is cached[0]._backend,
        ),
    ]
    checks.append((_CACHE_BOOKS, lambda: _cache_books(cached[0], trial._cached_frozen_trial)))
    checks.append(
        ("artifact metadata as optuna.artifacts writes and lists it", lambda: _artifacts(study))
    )
    checks.append((_STORED_KINDS, _stored_kinds))
    for what, check in checks:
        try:
            ok = check()
        except (AttributeError, KeyError, TypeError):
            ok = False
        if not ok:
            yield what


_CACHE_BOOKS = (
    "optuna.storages._cached_storage._CachedStorage._lock, _studies and "
    "_add_trials_to_cache(study_id, trials), and its per-study trials (by number), "
    "unfinished_trial_ids and last_finished_trial_id (the books TrialCache keeps)"
)


def _cache_books(cached: Any, trial: FrozenTrial) -> bool:
    """Optuna's trial cache keeps a study's books where :class:`TrialCache` keeps them."""
    with quiet_in_memory_storage():
        study_id = cached.create_new_study([StudyDirection.MINIMIZE], "cellsearch-probe")
    with cached._lock:
        cached._add_trials_to_cache(study_id, [trial])
        books = cached._studies[study_id]
        return (
            books.trials == {trial.number: trial}
            and isinstance(books.unfinished_trial_ids, set)
            and books.last_finished_trial_id == -1
        )


_STORED_KINDS = (
    "TrialValueModel.value_to_stored_repr and TrialIntermediateValueModel."
    "intermediate_value_to_stored_repr (the stored kinds of values the bulk writer writes)"
)


def _stored_kinds() -> bool:
    """Optuna's conversions of a value to its stored form name the kinds the reader reads."""
    models = _tables.models
    value = models.TrialValueModel.value_to_stored_repr(float("inf"))
    step = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(float("nan"))
    return (value[1].name, step[1].name) == ("INF_POS", "NAN")


def _artifacts(study: optuna.Study) -> bool:
    """A model attached the adapter's way is listed by Optuna's own reader, and taken off
    the adapter's list again."""
    storage = study._storage
    attach_study_artifact(storage, study._study_id, "probe", "probe.safetensors")
    metas = optuna.artifacts.get_all_artifact_meta(study)
    listed = [(m.artifact_id, m.filename) for m in metas] == [("probe", "probe.safetensors")]
    forget_study_artifact(storage, study._study_id, "probe")
    return listed and study_artifacts(storage, study._study_id) == {}


def _probe() -> tuple[optuna.Study, optuna.Trial, tuple[Any, Any]]:
    storage = optuna.storages.InMemoryStorage()
    with quiet_in_memory_storage():
        study_id = storage.create_new_study([StudyDirection.MINIMIZE], "cellsearch-probe")
    study = optuna.Study(
        "cellsearch-probe",
        storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )
    trial = optuna.Trial(study, storage.create_new_trial(study_id))
    inner = optuna.storages.InMemoryStorage()
    return study, trial, (_CachedStorage(inner), inner)  # type: ignore[arg-type]
