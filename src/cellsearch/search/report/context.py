"""What the report needs to know about a study besides its trials: :class:`ReportContext`.

:meth:`ReportContext.of` reads it off a study's spec: the objective in words and its
bounds (:mod:`.metric`), the task's trivial baseline of that objective
(:func:`cellsearch.search.tasks.baselines.objective_baseline`), the margin that counts as
learning (``comparison.min_gain``), the searched ranges and the fixed hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cellsearch.search.report import details as report_details
from cellsearch.search.report.metric import objective_metric
from cellsearch.search.study.comparison import MIN_GAIN
from cellsearch.search.study.sampling import random_rounds
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks.base import Baseline
from cellsearch.search.tasks.baselines import objective_baseline


@dataclass(frozen=True)
class ReportContext:
    """What the report needs to know about a study besides its trials."""

    study_name: str
    direction: Literal["minimize", "maximize"]
    metric: str
    n_trials: int
    cell_types: tuple[str, ...]
    allocation: Literal["balanced", "adaptive"]
    seed: int
    status: str
    baseline: float | None = None
    baseline_description: str | None = None
    reevaluate: tuple[int, int] | None = None  # (top_k, seeds) when the study re-evaluates
    random_draws: int | None = None  # per cell type, when the study has a random phase
    ranges: dict[str, tuple[float, float, bool]] = field(default_factory=dict)  # low, high, log
    metric_label: str | None = None  # the objective in words: "validation MSE"
    metric_low: float | None = None  # the lowest value the objective can take
    metric_high: float | None = None
    fixed_params: dict[str, Any] = field(default_factory=dict)
    min_gain: float = MIN_GAIN  # the margin over the baseline that counts as learning

    @classmethod
    def of(cls, spec: StudySpec, *, status: str, baseline: Baseline | None = None) -> ReportContext:
        """The context of a study with ``spec``, whose lifecycle status is ``status``.

        Args:
            spec: The study's spec.
            status: Its lifecycle status.
            baseline: The trivial predictor's value of the study's objective
                (:func:`cellsearch.search.tasks.baselines.objective_baseline`, which the
                service calls with a reader of uploaded data sets); None: measured here,
                where no uploaded data set is needed.
        """
        if baseline is None:
            baseline = objective_baseline(spec.task, spec.objective.metric, seed=spec.seed)
        metric = objective_metric(spec, quantities=baseline.quantities)
        return cls(
            study_name=spec.name,
            direction=spec.objective.direction,
            metric=spec.objective.metric,
            n_trials=spec.budget.n_trials,
            cell_types=tuple(spec.cell_types),
            allocation=spec.allocation,
            seed=spec.seed,
            status=status,
            baseline=baseline.value,
            baseline_description=baseline.description,
            reevaluate=(
                None if spec.reevaluate is None else (spec.reevaluate.top_k, spec.reevaluate.seeds)
            ),
            random_draws=random_rounds(spec),
            ranges=spec.ranges(),
            metric_label=metric.label,
            metric_low=metric.low,
            metric_high=metric.high,
            fixed_params=report_details.fixed_params(spec),
            min_gain=spec.comparison.min_gain,
        )
