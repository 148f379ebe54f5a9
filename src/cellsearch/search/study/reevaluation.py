"""Seed re-evaluation: which configurations are retrained, with which seeds.

Picking the best of many noisy trials favours the luckiest seed (the winner's curse;
Reimers & Gurevych 2017, Melis et al. 2018). Once the search budget is spent, a study with
``reevaluate: {top_k, seeds}`` retrains the ``top_k`` best configurations of each cell
type (by validation, among completed search trials) from scratch with ``seeds`` fresh
seeds each. :func:`plan` lists those jobs in a fixed order, the same for every worker
that reads the same finished search: cell types in the spec's order, configurations from
the best, seeds in order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import cell_of, is_reevaluation
from cellsearch.search.study.spec import StudySpec

JOB_SEED_OFFSET = 2_000_000
"""Re-evaluation job ``j`` trains with the seed derived from ``JOB_SEED_OFFSET + j``
(search trials derive theirs from ``1_000_000 + trial number``), so the seeds are fresh
and a requeued copy of a job trains exactly as the job would have."""


@dataclass(frozen=True)
class Job:
    """One re-evaluation trial: trial ``of``'s configuration, trained with seed ``seed``."""

    index: int
    cell: str
    rank: int  # 0: the cell type's best configuration
    of: int  # number of the search trial whose parameters are retrained
    seed: int  # 0-based index of the fresh seed
    params: dict[str, Any]


def top_configurations(
    spec: StudySpec, trials: Sequence[FrozenTrial]
) -> dict[str, list[FrozenTrial]]:
    """The best completed search trials of each cell type, at most ``top_k`` each.

    Ties in value go to the earlier trial. Cell types follow the spec's order.
    """
    assert spec.reevaluate is not None
    sign = -1.0 if spec.objective.direction == "maximize" else 1.0
    out: dict[str, list[FrozenTrial]] = {}
    for cell in spec.cell_types:
        done = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE
            and not is_reevaluation(t)
            and cell_of(t) == cell
            and t.value is not None
            and math.isfinite(t.value)
        ]
        done.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
        out[cell] = done[: spec.reevaluate.top_k]
    return out


def plan(spec: StudySpec, trials: Sequence[FrozenTrial]) -> list[Job]:
    """Every re-evaluation job of a study whose search is done (none without ``reevaluate``)."""
    if spec.reevaluate is None:
        return []
    jobs: list[Job] = []
    for cell, top in top_configurations(spec, trials).items():
        for rank, trial in enumerate(top):
            for seed in range(spec.reevaluate.seeds):
                jobs.append(Job(len(jobs), cell, rank, trial.number, seed, dict(trial.params)))
    return jobs
