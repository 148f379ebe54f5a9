"""Optuna samplers and pruners named by a study spec.

Samplers are not persisted by Optuna, so each worker rebuilds the sampler for each
trial from the spec. The seed mixes the study seed with the trial's claim index, so
concurrent workers do not draw identical random streams while a study stays
reproducible for a given order of claims.
"""

from __future__ import annotations

import random
import warnings

import optuna

from cellsearch.search.study import pruning
from cellsearch.search.study.allocation import CellConditionedSampler, balanced_cell
from cellsearch.search.study.spec import StudySpec


def trial_seed(study_seed: int, index: int) -> int:
    """A 31-bit seed derived from the study seed and a per-trial index."""
    return random.Random(study_seed * 1_000_003 + index).getrandbits(31)


def make_sampler(spec: StudySpec, index: int) -> optuna.samplers.BaseSampler:
    """The sampler for the trial with claim ``index`` (0-based) of ``spec``."""
    with warnings.catch_warnings():  # TPE's group= is "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(spec, index)


def _make_sampler(spec: StudySpec, index: int) -> optuna.samplers.BaseSampler:
    seed = trial_seed(spec.seed, index)
    base: optuna.samplers.BaseSampler
    if spec.sampler == "tpe":
        # group=True lets TPE model the conditional (per-cell) parameters jointly;
        # constant_liar keeps concurrent workers from piling onto one point.
        base = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=True
        )
    elif spec.sampler == "random":
        base = optuna.samplers.RandomSampler(seed=seed)
    elif spec.sampler == "gp":
        base = optuna.samplers.GPSampler(seed=seed)
    else:  # qmc: the sequence position comes from the trial number; one seed per study
        base = optuna.samplers.QMCSampler(seed=spec.seed, scramble=True)
    cells = spec.cell_types
    if spec.allocation == "balanced" and len(cells) > 1:
        return CellConditionedSampler(balanced_cell(cells, spec.seed, index), base)
    return base


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The pruner of ``spec``: per cell type under balanced allocation (see :mod:`.pruning`)."""
    return pruning.make_pruner(
        spec.pruner,
        spec.budget.max_epochs,
        spec.allocation,
        spec.pruning.min_complete_per_cell,
    )
