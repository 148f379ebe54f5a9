"""The ``comparison`` part of a study spec: where the comparison takes its evidence from,
and what counts as having learned the task.

Kept apart from :mod:`cellsearch.search.study.spec`, which re-exports :class:`Comparison`.
"""

from __future__ import annotations

from pydantic import Field

from cellsearch.search.study.param_forms import StrictModel

RANDOM_SHARE = 0.2
"""Default share of each cell type's trials drawn at random (``comparison.random_share``)."""
MIN_GAIN = 0.05
"""Default share of the way from the trivial baseline to the objective's best possible
value that a trial must cover to count as having learned the task (``comparison.min_gain``;
see :mod:`cellsearch.search.report.learning` for the figures behind it)."""


class Comparison(StrictModel):
    """Where the comparison between cell types takes its evidence from."""

    random_share: float = Field(
        default=RANDOM_SHARE,
        ge=0.0,
        le=1.0,
        description="Share of each cell type's trials drawn at random from the search space "
        "(at least the sampler's 10 start-up trials) before an adaptive sampler (tpe, gp) "
        "takes over; the tests between cell types use these draws, which are independent "
        "of each other (an adaptive sampler's later draws depend on the earlier ones and "
        "would make the tests too confident). 1: random search. Balanced allocation only.",
    )
    prune_random: bool | None = Field(
        default=None,
        description="Whether the pruner may stop random draws. A pruned draw counts as a "
        "failure, so pruning them costs the tests most of their power. null (the default): "
        "random draws train to the end when the study has adaptive trials to prune, and are "
        "pruned when they are all the study has (up to 10 trials per cell type).",
    )
    min_gain: float = Field(
        default=MIN_GAIN,
        ge=0.0,
        lt=1.0,
        description="A trial has learned the task when its value covers at least this share "
        "of the way from the task's trivial baseline to the objective's best possible value "
        "(0 for a loss, 1 for an accuracy): 0.05 means 5%. A cell type none of whose trials "
        "did is reported as not having learned it; a study no cell type learned names no "
        "leader. 0: any improvement on the baseline counts.",
    )
    rank_unlearned: bool = Field(
        default=False,
        description="In a suite: rank the tasks no cell type learned with the others (false, "
        "the default: list them apart, out of the ranks, the tests and the "
        "critical-difference diagram, whose evidence they would only dilute with noise).",
    )
