"""A view of a study that shows only the trials of one cell type.

The per-cell sampler (:mod:`cellsearch.search.study.allocation`) and the per-cell pruner
(:mod:`cellsearch.search.study.pruning`) both hand Optuna's code such a view, so that
each cell type has its own history. The view filters every path by which trials reach
that code: ``get_trials``, the private ``Study._get_trials`` and ``trials`` of the study,
and ``get_all_trials``/``get_n_trials`` of its private ``Study._storage`` (Hyperband's
per-bracket study reads the storage directly, by the private ``Study._study_id``). It
therefore mirrors the signatures of those Optuna methods, which
:func:`~cellsearch.search.optuna_adapter.check_internals` verifies.

A strict view (the pruner's) passes through only the metadata named below and raises
``AttributeError`` for anything else, rather than leak unfiltered trials to code that
would read them another way; a lenient view (the sampler's: samplers read more of the
study, such as its caches) passes everything else through unchanged.

A sampler's view may also show *seeds*: finished trials of earlier studies, given as
``FrozenTrial`` objects that live in no storage (a warm start, see
:mod:`cellsearch.search.study.seeding`), listed before the study's own trials on every
path above. :func:`seeded_view` shows them beside all of a study's trials (no cell type
filter). Seeds never reach a pruner: only samplers are given seeded views.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container, Sequence
from typing import Any, cast

import optuna
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import cell_of

# Study attributes the view passes through unchanged: metadata, never trials.
_STUDY_PASS = frozenset(
    {
        "study_name",
        "_study_id",
        "direction",
        "directions",
        "_directions",
        "_is_multi_objective",
        "sampler",
        "pruner",
        "stop",
        "user_attrs",
        "system_attrs",
    }
)
# Storage methods the view passes through: study metadata and reads/writes of one trial.
_STORAGE_PASS = frozenset(
    {
        "get_study_id_from_name",
        "get_study_name_from_id",
        "get_study_directions",
        "get_study_user_attrs",
        "get_study_system_attrs",
        "get_trial",
        "get_trial_system_attrs",
        "set_trial_system_attr",
        "set_trial_user_attr",
    }
)


Keep = Callable[[FrozenTrial], bool]


def _shown(
    trials: list[FrozenTrial],
    keep: Keep,
    seeds: Sequence[FrozenTrial],
    deepcopy: bool,
    states: Container[TrialState] | None,
) -> list[FrozenTrial]:
    """The seeds in ``states`` (copied when ``deepcopy``), then the trials ``keep`` keeps."""
    shown = [s for s in seeds if states is None or s.state in states]
    return [*(copy.deepcopy(shown) if deepcopy else shown), *filter(keep, trials)]


class _CellStorage:
    """A storage proxy whose ``get_all_trials`` returns only one cell type's trials (and
    the seeds)."""

    def __init__(
        self, storage: Any, keep: Keep, strict: bool, seeds: Sequence[FrozenTrial] = ()
    ) -> None:
        self._storage = storage
        self._keep = keep
        self._strict = strict
        self._seeds = seeds

    def __getattr__(self, name: str) -> Any:
        if self._strict and name not in _STORAGE_PASS:
            raise AttributeError(f"the per-cell view of the storage does not expose {name!r}")
        return getattr(self._storage, name)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        return _shown(trials, self._keep, self._seeds, deepcopy, states)

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        states = (state,) if isinstance(state, TrialState) else state
        return len(self.get_all_trials(study_id, deepcopy=False, states=states))


class _CellStudy:
    """A read-only view of a study showing only the trials of one cell type (and the
    seeds)."""

    def __init__(
        self, study: optuna.Study, keep: Keep, strict: bool, seeds: Sequence[FrozenTrial] = ()
    ) -> None:
        self._study = study
        self._keep = keep
        self._storage = _CellStorage(study._storage, keep, strict, seeds)
        self._strict = strict
        self._seeds = seeds

    def __getattr__(self, name: str) -> Any:
        if self._strict and name not in _STUDY_PASS:
            raise AttributeError(f"the per-cell view of the study does not expose {name!r}")
        return getattr(self._study, name)

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        trials = self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        return _shown(trials, self._keep, self._seeds, deepcopy, states)

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


def cell_view(
    study: optuna.Study,
    cell: str | None,
    *,
    strict: bool = True,
    seeds: Sequence[FrozenTrial] = (),
) -> optuna.Study:
    """``study`` showing only the trials of ``cell``, after the ``seeds`` of that cell (a
    lenient view only; see the module docstring)."""
    if seeds and strict:
        raise ValueError("seeds are shown to samplers only, through a lenient view")

    def keep(trial: FrozenTrial) -> bool:
        return cell_of(trial) == cell

    return cast(optuna.Study, _CellStudy(study, keep, strict, [s for s in seeds if keep(s)]))


def seeded_view(study: optuna.Study, seeds: Sequence[FrozenTrial]) -> optuna.Study:
    """``study`` showing every one of its trials after ``seeds`` (a lenient view, for a
    sampler that is not conditioned on a cell type)."""
    return cast(optuna.Study, _CellStudy(study, lambda _trial: True, False, seeds))
