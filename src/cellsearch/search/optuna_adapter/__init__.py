"""The one place where cellsearch reaches into Optuna's storage and private API.

Optuna's public API has no bulk read, no batched attribute write, no "take a waiting
trial" and no stale-trial check outside ``study.optimize``; cellsearch needs all of them.
Everything that touches Optuna's tables or a private name lives in this package, behind
the surface below, and nowhere else in cellsearch. The rest of cellsearch imports only
these names (from this package, and the :mod:`.bulk_read` module); the modules whose
names start with an underscore are its implementation.

Surface (every name the rest of cellsearch may use), and the Optuna internals each relies on:

- :mod:`.bulk_read`, a module of set-based reads of a study's trials into the
  ``FrozenTrial`` objects Optuna returns (``TrialFilter``, ``ALL``, ``find_study_id``,
  ``find_study_ids``, ``find_trial``, ``read_trials``, ``read_page``, ``read_trials_by_id``,
  ``trial_ids``, ``count_trials``, ``best_trial``, ``change_markers``,
  ``count_in_marker``). Relies on ``optuna.storages._rdb.models``: the tables
  ``studies``, ``study_directions``, ``trials``, ``trial_params``, ``trial_values``,
  ``trial_intermediate_values``, ``trial_user_attributes`` and
  ``trial_system_attributes`` with the columns listed in ``_tables.USED``; enums stored
  by name (trial state, direction, value kinds); how trial datetimes are stored (below).
- :func:`trial_groups` and :class:`TrialGroup`: the trials of many studies counted in one
  grouped query, as plain records. Relies on the tables ``trials``, ``studies``,
  ``trial_user_attributes``.
- :func:`record_attrs`: a running trial's attributes (and heartbeat) in one transaction
  (on PostgreSQL through psycopg, the trial's lock and the writes as one query).
  Relies on the tables ``trials``, ``trial_user_attributes`` (unique on
  ``(trial_id, key)``), ``trial_heartbeats`` (unique on ``trial_id``); on
  ``Trial._trial_id`` and ``Trial._cached_frozen_trial``; and on
  ``optuna.storages._cached_storage._CachedStorage._backend``.
- :class:`AdapterStorage`: Optuna's RDB storage numbering a new trial (one made from no
  template, or from a running one holding only user attributes, which it writes in the
  same transaction) from the study's latest trial instead of a count, reading the trials behind
  Optuna's cache with one query per table, and writing a trial's parameters, reported
  values and end, and reading a running trial, in SQL statements built once instead of
  Optuna's ORM; on PostgreSQL each statement its own transaction, and a lock with the
  writes it guards (a new trial's, a trial's end) sent as one query
  (:mod:`._one_query`, psycopg's client-side binding). Relies on
  ``RDBStorage._create_new_trial(study_id, template_trial)``
  returning the new ``FrozenTrial`` (what ``_CachedStorage.create_new_trial`` caches), on
  the study's row lock that Optuna's creators take, on ``RDBStorage._get_trials(study_id,
  states, included_trial_ids, trial_id_greater_than)`` and ``_set_trial_param(...,
  previous_distribution)`` (what ``_CachedStorage`` calls), on the signatures of
  ``get_trial``, ``set_trial_intermediate_value`` and ``set_trial_state_values``, on the
  unique keys of the parameter, value and intermediate value tables, and on the tables
  of :mod:`.bulk_read`.
- :func:`load_study` and :class:`TrialCache`: a study loaded with Optuna's trial cache
  around an :class:`AdapterStorage`, where a read of no running trial re-reads only the
  trials that finished, or are in a state it asked for, or are new (Optuna's refresh
  re-reads every unfinished trial); :func:`unfinished_trial_ids`: the ids of the trials
  that may be running, from the cache's books; :func:`settled_trials`: every trial when
  none is running, no running one read. Relies on ``_CachedStorage``
  (``_backend``, ``_lock``, ``_studies``, ``_add_trials_to_cache``, ``get_all_trials``) and
  its per-study books (``trials`` by number, ``unfinished_trial_ids``,
  ``last_finished_trial_id``).
- :func:`batch_capable` and :func:`rdb_backend`: whether a storage is (or wraps) an RDB
  storage the batch path writes to. Relies on ``_CachedStorage._backend``.
- :func:`running_heartbeats` and :class:`Heartbeats`: which of the running trials a caller
  names have a stale heartbeat (Optuna's stale check, by the database's clock), and which
  never wrote one. Relies on the tables ``trials`` and ``trial_heartbeats``, and on
  ``RDBStorage.grace_period`` and ``heartbeat_interval``.
- :func:`study_id_of`: a study's storage id. Relies on ``Study._study_id``.
- :func:`take_waiting_trial` (take one enqueued trial, or none), and its halves
  :func:`pop_waiting_trial_id` and :func:`trial_of`; :func:`new_trial` (a new trial, never
  an enqueued one, optionally made with its user attributes); :func:`resampled` (a trial
  re-made under a new sampler). Rely on
  ``Study._thread_local.cached_all_trials``, ``Study._pop_waiting_trial_id``,
  ``Study._storage``, ``Study._study_id`` and ``Trial._trial_id``.
- :func:`cell_view`: a study showing one cell type's trials to Optuna's samplers and
  pruners, and :func:`seeded_view`: a study showing a sampler earlier studies' trials
  (a warm start's seeds) beside its own. Rely on ``Study._get_trials(deepcopy, states,
  use_cache)``, ``Study._storage``, ``Study._study_id`` and the signatures of
  ``BaseStorage.get_all_trials`` and ``get_n_trials``.
- :mod:`.bulk_write`, a module that writes a whole study (its rows, then each trial table
  in one ``executemany``) in the caller's transaction, and reads a study's own rows
  back (``StudyRows``, ``insert_study``, ``insert_trials``, ``read_study``,
  ``study_names``, ``stored_datetime``, ``STORED_IN_UTC``, ``TABLES``). Relies on the
  tables of :mod:`.bulk_read` and ``study_user_attributes``, ``study_system_attributes``; on
  ``TrialValueModel.value_to_stored_repr`` and
  ``TrialIntermediateValueModel.intermediate_value_to_stored_repr``; on how trial
  datetimes are stored (below).
- :func:`study_system_attr`: a study's system attribute. Relies on ``Study._storage`` and
  ``Study._study_id``.
- :func:`attach_study_artifact`, :func:`forget_study_artifact`, :func:`study_artifacts`:
  kept models listed among a study's artifacts (what optuna-dashboard shows), and taken
  off the list; :func:`listed_artifacts` and :func:`relisted_artifacts`: the same list
  read from, and replaced in, a study's system attributes (a study copied with new
  artifact ids). Rely on ``optuna.artifacts._upload.ARTIFACTS_ATTR_PREFIX`` and
  ``ArtifactMeta`` (the form ``upload_artifact`` writes) and on optuna-dashboard's way
  of deleting (the attribute set to JSON null).
- :class:`TrialsStudy`: a study serving given trials to Optuna's importance evaluators.
  Relies on ``FrozenTrial._trial_id`` and the logger name ``optuna.storages._in_memory``.
- :func:`check_internals`: verifies every internal above; :data:`TESTED_OPTUNA` and
  :func:`is_tested`: the Optuna release series the adapter was tested against.

Versions: written against Optuna 5.1; its tests pass on every release series from 4.5
(the floor in ``pyproject.toml``) to 5.1, listed in :data:`TESTED_OPTUNA`. One stored form
differs between them: Optuna 5.0 began to store trial datetimes as naive UTC (4.x: naive
local time); the bulk reader converts by the version, and the check verifies the table
class agrees. Nothing here falls back quietly when Optuna moves an internal: a private
module that is gone fails at import, and :func:`check_internals` (run when a worker or
the API starts) raises one :class:`~cellsearch.search.errors.OptunaInternalsError`
naming every internal that moved. The adapter's tests
(``tests/search/test_optuna_adapter*.py``) fail on an Optuna outside the tested series,
so that an upgrade makes a person re-check this package.
"""

from __future__ import annotations

from cellsearch.search.optuna_adapter import bulk_read, bulk_write
from cellsearch.search.optuna_adapter._artifacts import (
    attach_study_artifact,
    forget_study_artifact,
    listed_artifacts,
    relisted_artifacts,
    study_artifacts,
)
from cellsearch.search.optuna_adapter._cell_view import cell_view, seeded_view
from cellsearch.search.optuna_adapter._counts import TrialGroup, trial_groups
from cellsearch.search.optuna_adapter._heartbeats import Heartbeats, running_heartbeats
from cellsearch.search.optuna_adapter._internals import check_internals
from cellsearch.search.optuna_adapter._storage import AdapterStorage
from cellsearch.search.optuna_adapter._study import (
    new_trial,
    pop_waiting_trial_id,
    resampled,
    study_id_of,
    study_system_attr,
    take_waiting_trial,
    trial_of,
)
from cellsearch.search.optuna_adapter._trial_cache import (
    TrialCache,
    load_study,
    settled_trials,
    unfinished_trial_ids,
)
from cellsearch.search.optuna_adapter._trials_study import TrialsStudy
from cellsearch.search.optuna_adapter._versions import TESTED_OPTUNA, is_tested
from cellsearch.search.optuna_adapter._writes import (
    batch_capable,
    rdb_backend,
    record_attrs,
)

__all__ = [
    "TESTED_OPTUNA",
    "AdapterStorage",
    "Heartbeats",
    "TrialCache",
    "TrialGroup",
    "TrialsStudy",
    "attach_study_artifact",
    "batch_capable",
    "bulk_read",
    "bulk_write",
    "cell_view",
    "check_internals",
    "forget_study_artifact",
    "is_tested",
    "listed_artifacts",
    "load_study",
    "new_trial",
    "pop_waiting_trial_id",
    "rdb_backend",
    "record_attrs",
    "relisted_artifacts",
    "resampled",
    "running_heartbeats",
    "seeded_view",
    "settled_trials",
    "study_artifacts",
    "study_id_of",
    "study_system_attr",
    "take_waiting_trial",
    "trial_groups",
    "trial_of",
    "unfinished_trial_ids",
]
