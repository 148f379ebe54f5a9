"""Balanced allocation of trials to cell types, and per-cell conditioning of the sampler.

Under ``allocation: balanced`` the worker fixes the cell type of each claim (dealt in
rounds, see :func:`balanced_cell`) and :class:`CellConditionedSampler` lets the base
sampler (TPE, GP, random...) choose the other hyperparameters from the history of that
cell type only: an LSTM trial's learning rate is proposed from earlier LSTM trials, not
from the GRU trials that happen to share the parameter name. Each cell type thus gets its
own search, and the comparison between cell types compares equally tuned searches.

Both samplers here may also show the base sampler *seeds*: a warm start's trials of
earlier studies (:mod:`cellsearch.search.study.seeding`), listed beside the study's own
trials in the view the base sampler reads, never stored in the study.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.optuna_adapter import cell_view, seeded_view
from cellsearch.search.record import CELL_PARAM


def balanced_cell(cells: list[str], seed: int, index: int) -> str:
    """The cell type of claim ``index`` under balanced allocation.

    Claims are dealt in rounds of ``len(cells)``; each round visits every cell once in
    an order shuffled by the study seed and the round number, so after any number of
    claims the per-cell counts differ by at most one and no cell always goes first.
    """
    round_number, position = divmod(index, len(cells))
    order = list(cells)
    random.Random(seed * 7919 + round_number).shuffle(order)
    return order[position]


class SeededSampler(BaseSampler):
    """The base sampler, shown ``seeds`` (finished trials of earlier studies) before the
    study's own trials.

    Args:
        base_sampler: The sampler that proposes every parameter.
        seeds: Trials in no storage, shown to the base sampler only.
    """

    def __init__(self, base_sampler: BaseSampler, seeds: Sequence[FrozenTrial] = ()) -> None:
        self.base = base_sampler
        self.seeds = list(seeds)

    def _view(self, study: optuna.Study) -> optuna.Study:
        return seeded_view(study, self.seeds)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.base.sample_independent(
            self._view(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(self._view(study), trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.base.after_trial(self._view(study), trial, state, values)


class CellConditionedSampler(SeededSampler):
    """Fix ``cell_type`` and sample everything else from that cell's own history.

    Args:
        cell: The cell type of the trial being sampled.
        base_sampler: The sampler that proposes the other parameters; it sees a view of
            the study restricted to trials whose ``cell_type`` is ``cell``.
        seeds: Trials of earlier studies shown with them (those of ``cell`` only).
    """

    def __init__(
        self, cell: str, base_sampler: BaseSampler, seeds: Sequence[FrozenTrial] = ()
    ) -> None:
        super().__init__(base_sampler, seeds)
        self.cell = cell

    def _view(self, study: optuna.Study) -> optuna.Study:
        return cell_view(study, self.cell, strict=False, seeds=self.seeds)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        space = super().infer_relative_search_space(study, trial)
        space.pop(CELL_PARAM, None)
        return space

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if param_name == CELL_PARAM:
            return self.cell
        return super().sample_independent(study, trial, param_name, param_distribution)
