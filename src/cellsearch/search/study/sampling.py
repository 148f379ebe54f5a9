"""Optuna samplers and pruners named by a study spec.

Samplers are not persisted by Optuna, so each worker rebuilds the sampler for each
trial from the spec. The seed mixes the study seed with the trial's claim index, so
concurrent workers do not draw identical random streams while a study stays
reproducible for a given order of claims.

Under balanced allocation with an adaptive sampler (TPE, GP), each cell type's first
trials (:func:`random_rounds`: ``comparison.random_share`` of its budget, at least the
sampler's start-up trials) are drawn at random from the search space, and every fresh
trial records which kind of draw it is (:func:`draw_attrs`). The random draws of a cell
type are independent of each other and of the other cell types' draws, which the tests
between cell types need; the adaptive draws that follow (each proposed from the cell
type's earlier trials) serve the search for the best configuration.

A study with a warm start shows its adaptive draws (and only those) the seeds of their
cell type (:func:`shown_seeds`, :mod:`cellsearch.search.study.seeding`).
"""

from __future__ import annotations

import math
import random
import warnings
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial

from cellsearch.search.record import Attr, Draw
from cellsearch.search.study import pruning
from cellsearch.search.study.allocation import (
    CellConditionedSampler,
    SeededSampler,
    balanced_cell,
)
from cellsearch.search.study.spec import StudySpec

if TYPE_CHECKING:
    from cellsearch.search.study.seeding import WarmSeeds


def trial_seed(study_seed: int, index: int) -> int:
    """A 31-bit seed derived from the study seed and a per-trial index."""
    return random.Random(study_seed * 1_000_003 + index).getrandbits(31)


STARTUP_TRIALS = 10
"""Trials TPE and GP draw at random before they model (Optuna's ``n_startup_trials``)."""
ADAPTIVE_SAMPLERS = frozenset({"tpe", "gp"})
"""Samplers whose draws depend on earlier draws (random and qmc ones do not)."""


def random_rounds(spec: StudySpec) -> int | None:
    """How many trials of each cell type are drawn at random from the search space
    (``comparison.random_share`` of its budget, at least the sampler's start-up trials);
    None when the study has no such phase: a non-adaptive sampler (every draw is of the
    same kind), or adaptive allocation (the sampler chooses the cell types too)."""
    cells = spec.cell_types
    if spec.sampler not in ADAPTIVE_SAMPLERS or spec.allocation != "balanced" or len(cells) < 2:
        return None
    per_cell = spec.trials_per_cell
    wanted = max(STARTUP_TRIALS, math.ceil(spec.comparison.random_share * per_cell - 1e-9))
    return min(per_cell, wanted)


def _round(spec: StudySpec, index: int) -> int:
    """The balanced-allocation round of claim ``index``: one claim per cell type a round
    (see :func:`~cellsearch.search.study.allocation.balanced_cell`)."""
    return index // len(spec.cell_types)


def draw_attrs(spec: StudySpec, index: int) -> dict[str, str]:
    """The attributes a freshly sampled search trial with claim ``index`` carries: which
    kind of draw it is (see :data:`cellsearch.search.record.Attr.DRAW`), or none when the
    study has no random phase."""
    rounds = random_rounds(spec)
    if rounds is None:
        return {}
    random_draw = _round(spec, index) < rounds
    return {Attr.DRAW: Draw.RANDOM if random_draw else Draw.ADAPTIVE}


def dealt_cell(spec: StudySpec, index: int) -> str | None:
    """The cell type the trial with claim (deal) ``index`` runs, when the study decides it
    (balanced allocation, or one cell type); None when the sampler chooses it."""
    cells = spec.cell_types
    if len(cells) == 1:
        return cells[0]
    return balanced_cell(cells, spec.seed, index) if spec.allocation == "balanced" else None


def shown_seeds(spec: StudySpec, index: int, seeds: WarmSeeds | None) -> list[FrozenTrial]:
    """The warm start's seeds the sampler of claim ``index`` is shown: those of its cell
    type, on an adaptive draw; none on a random draw (the tests' draws stay independent of
    everything)."""
    if seeds is None or draw_attrs(spec, index).get(Attr.DRAW) == Draw.RANDOM:
        return []
    return seeds.trials(spec, dealt_cell(spec, index) if len(spec.cell_types) > 1 else None)


def warm_attrs(spec: StudySpec, index: int, seeds: WarmSeeds | None) -> dict[str, int]:
    """The attribute a fresh search trial with claim ``index`` carries when its sampler was
    shown seeds (:data:`cellsearch.search.record.Attr.WARM_START`: how many)."""
    shown = len(shown_seeds(spec, index, seeds))
    return {Attr.WARM_START: shown} if shown else {}


def make_sampler(
    spec: StudySpec, index: int, seeds: WarmSeeds | None = None
) -> optuna.samplers.BaseSampler:
    """The sampler for the trial with claim ``index`` (0-based) of ``spec``, shown the
    ``seeds`` of a warm start where :func:`shown_seeds` says."""
    with warnings.catch_warnings():  # TPE's group= is "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(spec, index, shown_seeds(spec, index, seeds))


def _make_sampler(
    spec: StudySpec, index: int, seeds: list[FrozenTrial]
) -> optuna.samplers.BaseSampler:
    seed = trial_seed(spec.seed, index)
    base: optuna.samplers.BaseSampler
    random_draw = draw_attrs(spec, index).get(Attr.DRAW) == Draw.RANDOM
    if random_draw and _round(spec, index) >= STARTUP_TRIALS:
        # the random phase past the sampler's own start-up (whose draws are random too,
        # and the same as before the phase existed)
        base = optuna.samplers.RandomSampler(seed=seed)
    elif spec.sampler == "tpe":
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
    cell = dealt_cell(spec, index)
    if cell is not None and len(spec.cell_types) > 1:
        return CellConditionedSampler(cell, base, seeds)
    return SeededSampler(base, seeds) if seeds else base


def make_pruner(spec: StudySpec) -> optuna.pruners.BasePruner:
    """The pruner of ``spec``: per cell type under balanced allocation (see :mod:`.pruning`)."""
    return pruning.make_pruner(
        spec.pruner,
        spec.budget.max_epochs,
        spec.allocation,
        spec.pruning.min_complete_per_cell,
        keep_random=keeps_random_draws(spec),
    )


def keeps_random_draws(spec: StudySpec) -> bool:
    """Whether the pruner leaves the random draws alone (``comparison.prune_random``; by
    default when the study has adaptive trials to prune instead)."""
    rounds = random_rounds(spec)
    if rounds is None:
        return False
    if spec.comparison.prune_random is not None:
        return not spec.comparison.prune_random
    return rounds < spec.trials_per_cell
