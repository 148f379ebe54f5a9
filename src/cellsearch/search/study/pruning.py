"""Pruning within each cell type, and the guards that keep every cell type testable.

Optuna's pruners compare a trial with every trial of the study at the same step. When
cell types learn at different speeds, a slow starter is pruned at the first rung by a
cell that starts fast, and the pruner decides the comparison before the report sees it
(Li et al. 2018: successive halving fails under "drastically different convergence
rates"). :class:`CellPruner` hands the wrapped pruner a view of the study that shows
only the trials of the judged trial's cell type, so each cell type has its own rungs
(successive halving), brackets (Hyperband) and median history (median rule).

The view (:func:`cellsearch.search.optuna_adapter.cell_view`) filters every path by
which trials reach Optuna's pruners, Hyperband's per-bracket study included. The study
name and trial numbers are untouched, so Hyperband assigns each trial to the same
bracket as before; the rung values that successive halving writes into the judged
trial's system attributes go to the real storage.

Two guards act after the wrapped pruner has decided (so that it still records its
rung values):

- ``min_complete_per_cell``: a trial is never pruned while its cell type has fewer
  COMPLETE trials than this. The count is read from storage at each decision, and
  completions never disappear, so under any number of concurrent workers a cell type
  with a pruned trial has at least this many completed trials. What concurrency adds
  is survivors: if three workers run trials of a cell type that has two completions,
  none of the three is pruned at the rungs they pass meanwhile, and the cell type may
  end with up to (workers - 1) more full-length trials than the minimum. Counting
  RUNNING trials instead would prune earlier but break the guarantee whenever a
  running trial then diverges or its worker dies, so only completions count.
- ``final_step``: a trial that has reached the last epoch is never pruned. Optuna's
  Hyperband and successive halving place a rung at ``max_resource`` too, so without
  this guard up to two thirds of the trials that trained every epoch are recorded as
  pruned at the last one and drop out of the comparison.
"""

from __future__ import annotations

from typing import Literal

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.optuna_adapter import cell_view
from cellsearch.search.record import Attr, Draw, cell_of

PrunerName = Literal["hyperband", "median", "successive_halving", "none"]


class CellPruner(BasePruner):
    """Run an Optuna pruner per cell type, with the minimum-completions and last-epoch guards.

    Args:
        base: The pruner that decides (Hyperband, successive halving, median...). One
            instance serves every cell type: it keeps no per-trial state of its own.
        per_cell: True to let ``base`` see only the judged trial's cell type; False to
            let it compare across cell types (the guards still apply).
        min_complete_per_cell: Never prune a trial of a cell type with fewer COMPLETE
            trials than this; 0 disables the guard.
        final_step: Never prune at this step or later (the last epoch); None disables.
        keep_random: Never prune a random draw (a trial of a cell type's random phase,
            :class:`~cellsearch.search.record.Draw`): the comparison's evidence trains to
            the end, and only the sampler's adaptive trials are pruned.
    """

    def __init__(
        self,
        base: BasePruner,
        *,
        per_cell: bool = True,
        min_complete_per_cell: int = 3,
        final_step: int | None = None,
        keep_random: bool = False,
    ) -> None:
        if min_complete_per_cell < 0:
            raise ValueError(f"min_complete_per_cell must be >= 0, got {min_complete_per_cell}")
        self.base = base
        self.per_cell = per_cell
        self.min_complete_per_cell = min_complete_per_cell
        self.final_step = final_step
        self.keep_random = keep_random

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        view = cell_view(study, cell_of(trial))
        if not self.base.prune(view if self.per_cell else study, trial):
            return False  # asked first even for a kept trial: Hyperband records its rungs
        if self.keep_random and trial.user_attrs.get(Attr.DRAW) == Draw.RANDOM:
            return False
        step = trial.last_step
        if self.final_step is not None and step is not None and step >= self.final_step:
            return False
        if self.min_complete_per_cell:
            done = view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if len(done) < self.min_complete_per_cell:
                return False
        return True


def global_pruner(pruner: PrunerName, max_epochs: int) -> BasePruner:
    """The Optuna pruner named ``pruner``, comparing across cell types, sized to the epochs."""
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=1, max_resource=max_epochs, reduction_factor=3
        )
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if pruner == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {pruner!r}")


def make_pruner(
    pruner: PrunerName,
    max_epochs: int,
    allocation: Literal["balanced", "adaptive"],
    min_complete_per_cell: int = 3,
    keep_random: bool = False,
) -> BasePruner:
    """The pruner of a study, from its spec fields.

    Args:
        pruner: ``spec.pruner``.
        max_epochs: ``spec.budget.max_epochs``; no trial is pruned at this epoch.
        allocation: ``spec.allocation``. ``balanced`` prunes within each cell type;
            ``adaptive`` keeps the global comparison (the sampler chooses the cell types,
            so per-cell histories would be unequal and biased anyway).
        min_complete_per_cell: ``spec.pruning.min_complete_per_cell`` (0 disables).
        keep_random: Random draws train to the end (see ``sampling.keeps_random_draws``).

    Returns:
        A :class:`CellPruner` around :func:`global_pruner`, or a ``NopPruner`` for
        ``none``.
    """
    base = global_pruner(pruner, max_epochs)
    if pruner == "none":
        return base
    return CellPruner(
        base,
        per_cell=allocation == "balanced",
        min_complete_per_cell=min_complete_per_cell,
        final_step=max_epochs,
        keep_random=keep_random,
    )
