"""Calls on a live :class:`optuna.Study` that Optuna keeps private.

A worker using ask and tell needs what Optuna's public API does not give: the study's
storage id (to ask the storage about the study's heartbeats), and the two halves of
``Study.ask`` apart: "take one waiting trial, or none" and "a new trial, never a waiting
one" (a worker decides which sampler a trial gets by which of the two it is, and must
set the sampler before Optuna's ``Trial`` samples its relative parameters). They live
here, written exactly as ``Study.ask`` does them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import optuna

from cellsearch.search.optuna_adapter._frozen import running_trial


def study_id_of(study: optuna.Study) -> int:
    """The storage's id of ``study`` (``Study._study_id``)."""
    return study._study_id


def pop_waiting_trial_id(study: optuna.Study) -> int | None:
    """Take one WAITING trial of ``study`` (an enqueued one): its id, or None when none
    waits.

    The trial is set RUNNING atomically, as ``Study.ask`` takes one: of workers racing for
    one waiting trial exactly one gets it. As ``ask`` does, the study's per-thread trial
    cache is dropped first, so that trials enqueued since the last read are seen. Make it
    an :class:`optuna.Trial` with :func:`trial_of` once the study's sampler is set.
    """
    study._thread_local.cached_all_trials = None
    return study._pop_waiting_trial_id()


def trial_of(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The running trial ``trial_id`` of ``study`` as an :class:`optuna.Trial` (its relative
    parameters sampled now, by the study's current sampler)."""
    return optuna.Trial(study, trial_id)


def resampled(study: optuna.Study, trial: optuna.Trial) -> optuna.Trial:
    """``trial`` again, its relative parameters sampled anew by the study's current sampler
    (before it has suggested anything: a trial's suggestions are stored as made)."""
    return optuna.Trial(study, trial._trial_id)


def new_trial(study: optuna.Study, user_attrs: dict[str, Any] | None = None) -> optuna.Trial:
    """A new RUNNING trial of ``study``, never a waiting one (the second half of ``ask``),
    with ``user_attrs`` set as it is made: in the same transaction as the trial on
    :class:`~cellsearch.search.optuna_adapter.AdapterStorage`, through Optuna's template
    path (a RUNNING template that holds only the attributes) on any other storage."""
    study._thread_local.cached_all_trials = None
    template = running_trial(dt.datetime.now(), user_attrs) if user_attrs else None
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=template)
    return optuna.Trial(study, trial_id)


def take_waiting_trial(study: optuna.Study) -> optuna.Trial | None:
    """Take one WAITING trial of ``study`` (an enqueued one), or None when none waits.

    The trial is set RUNNING atomically, as ``Study.ask`` takes one: of workers racing for
    one waiting trial exactly one gets it. As ``ask`` does, the study's per-thread trial
    cache is dropped first, so that trials enqueued since the last read are seen.
    """
    trial_id = pop_waiting_trial_id(study)
    return None if trial_id is None else trial_of(study, trial_id)


def study_system_attr(study: optuna.Study, key: str) -> Any:
    """The study's system attribute ``key`` (None when unset); Optuna 5 dropped the public
    ``Study.system_attrs``, so it is read through ``Study._storage``."""
    return study._storage.get_study_system_attrs(study._study_id).get(key)
