"""Calls on a live :class:`optuna.Study` that Optuna keeps private.

A worker using ask and tell needs two things Optuna's public API does not give: the
study's storage id (to ask the storage about the study's heartbeats) and "take one
waiting trial, or none", which ``Study.ask`` does first but then creates a new trial
when none waits. Both live here, written exactly as ``Study.ask`` does them.
"""

from __future__ import annotations

import optuna


def study_id_of(study: optuna.Study) -> int:
    """The storage's id of ``study`` (``Study._study_id``)."""
    return study._study_id


def take_waiting_trial(study: optuna.Study) -> optuna.Trial | None:
    """Take one WAITING trial of ``study`` (an enqueued one), or None when none waits.

    The trial is set RUNNING atomically, as ``Study.ask`` takes one: of workers racing for
    one waiting trial exactly one gets it. As ``ask`` does, the study's per-thread trial
    cache is dropped first, so that trials enqueued since the last read are seen.
    """
    study._thread_local.cached_all_trials = None
    trial_id = study._pop_waiting_trial_id()
    if trial_id is None:
        return None
    return optuna.Trial(study, trial_id)
