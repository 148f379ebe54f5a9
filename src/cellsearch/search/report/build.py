"""The comparison report: does the cell type matter, which one wins, how sure are we?

:func:`build_report` turns a study's trials into a
:class:`~cellsearch.search.report.model.StudyReport` (no NaN or infinity: missing numbers
are ``None``; :meth:`~cellsearch.search.report.model.ReportModel.to_json` gives its JSON).
Sections:

- ``study``: name, direction, metric (``metric_label`` in words, ``metric_low`` and
  ``metric_high`` its bounds), budget, allocation, status, counts by state (``counts``
  by Optuna state; ``trial_counts`` as the service counts them), the hyperparameters the
  spec fixes (``fixed_params``), ``partial`` (True unless the service marked the study
  completed).
- ``verdict``: one sentence; "No detectable difference at this budget" when no
  corrected test rejects, with what the design could detect; it never names a leader
  from fewer than three completed trials per cell type, and rests on the seed
  re-evaluation when the study has one.
- ``warnings`` (things that change how to read the numbers) and ``notes``.
- ``cells``: one summary per cell type (see :mod:`cellsearch.search.report.cells`),
  with ``n_beat_baseline`` (completed trials better than the baseline) and the best
  trial's ``hyperparameters`` (every one, fixed ones included).
- ``comparison``: pairwise best-of-n probabilities and Holm-corrected tests on every
  finished draw (see :mod:`cellsearch.search.report.compare`), or None with fewer than
  two cell types with finished trials.
- ``reevaluation``: the seed re-evaluation (see :mod:`.reevaluated`), or None.
- ``importance``: overall and per cell type (see
  :mod:`cellsearch.search.report.importance`).
- ``allocation``: which cell type each trial used, by trial number and by
  completion order.
- ``environment``: versions, devices and seeds.
- ``trials``: one row per trial, column by column (see
  :func:`cellsearch.search.report.details.trial_table`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import optuna
from optuna.trial import FrozenTrial

import cellsearch
from cellsearch.search.record import CELL_PARAM, Attr, Draw, cell_of, is_counted, search_trials
from cellsearch.search.report import caveats, draw_stats, reevaluated
from cellsearch.search.report import cells as report_cells
from cellsearch.search.report import compare as report_compare
from cellsearch.search.report import details as report_details
from cellsearch.search.report import importance as report_importance
from cellsearch.search.report.metric import objective_metric
from cellsearch.search.report.model import (
    SCHEMA_VERSION,
    Allocation,
    BootstrapInfo,
    CellComparison,
    CellSummary,
    Environment,
    ImportanceSection,
    Reevaluation,
    StudyFacts,
    StudyReport,
)
from cellsearch.search.study.sampling import random_rounds
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import baseline_of


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

    @classmethod
    def of(cls, spec: StudySpec, *, status: str) -> ReportContext:
        """The context of a study with ``spec``, whose lifecycle status is ``status``.

        The task's baseline is a validation loss, so it is drawn only when the study
        minimises that loss.
        """
        baseline = baseline_of(spec.task)
        metric = objective_metric(spec)
        return cls(
            study_name=spec.name,
            direction=spec.objective.direction,
            metric=spec.objective.metric,
            n_trials=spec.budget.n_trials,
            cell_types=tuple(spec.cell_types),
            allocation=spec.allocation,
            seed=spec.seed,
            status=status,
            baseline=baseline.value if spec.objective.metric == "val_loss" else None,
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
        )


def build_report(
    trials: Sequence[FrozenTrial],
    context: ReportContext,
    *,
    n_bootstrap: int = 1000,
    importance: bool = True,
    trial_table: bool = True,
) -> StudyReport:
    """Build the comparison report of a study.

    Args:
        trials: The study's trials in any state.
        context: Study facts that are not stored on the trials.
        n_bootstrap: Bootstrap replicates for each best-value interval.
        importance: False to skip hyperparameter importance (the slowest part).
        trial_table: False to leave out the per-trial table (``trials`` is then None).

    Returns:
        The report (see the module docstring).
    """
    maximize = context.direction == "maximize"
    search = search_trials(trials)
    groups, unknown = _group(search, context.cell_types)
    budget = max(1, context.n_trials // max(1, len(groups)))
    cells = [
        report_cells.summarise_cell(
            cell,
            group,
            maximize=maximize,
            budget=budget,
            n_bootstrap=n_bootstrap,
            seed=[context.seed, index],
            baseline=context.baseline,
            fixed_params=context.fixed_params,
        )
        for index, (cell, group) in enumerate(groups.items())
    ]
    draws, tested_n, random_only = _tested_draws(groups, context, maximize, budget)
    comparison = None
    if len(draws) >= 2:
        comparison = report_compare.compare_cells(draws, budget=tested_n, random_only=random_only)
    n_finished = sum(is_counted(t) for t in search)  # as the service counts them
    lead = report_compare.leader(cells, draws, tested_n, maximize)
    verdict, leader = report_compare.verdict(
        comparison, cells=cells, lead=lead, n_finished=n_finished
    )
    reevaluation = None
    if context.reevaluate is not None:
        top_k, seeds = context.reevaluate
        reevaluation = reevaluated.summarise(
            trials, top_k=top_k, seeds=seeds, maximize=maximize,
            complete=context.status == "completed", seed=context.seed,
        )  # fmt: skip
        verdict, leader = reevaluated.verdict(reevaluation, maximize) or (verdict, leader)
    return StudyReport(
        schema_version=SCHEMA_VERSION,
        study=_study_section(search, context, n_finished),
        verdict=verdict,
        leader=leader,
        warnings=(
            caveats.partial(context.status, n_finished, context.n_trials)
            + caveats.adaptive(context.allocation)
            + caveats.pruning_rates(cells)
            + caveats.range_edges(cells, context.ranges)
        ),
        notes=_notes(groups, unknown, cells, comparison, reevaluation),
        cells=cells,
        comparison=comparison,
        reevaluation=reevaluation,
        importance=_importance(groups, maximize, context.seed) if importance else None,
        allocation=_allocation(search),
        environment=_environment(trials, context, n_bootstrap),
        trials=report_details.trial_table(trials) if trial_table else None,
    )


def _tested_draws(
    groups: dict[str, list[FrozenTrial]], context: ReportContext, maximize: bool, budget: int
) -> tuple[dict[str, draw_stats.Draws], int, bool]:
    """The draws the tests between cell types compare, the ``n`` of their best of ``n``,
    and whether those are the random phase's draws only.

    In a study past its random phase (its finished trials say which kind of draw they
    are, see :func:`cellsearch.search.study.sampling.draw_attrs`, and some are adaptive)
    only the random draws are tested:
    an adaptive sampler's draws depend on the cell type's earlier trials, so they are not
    independent draws (a cell type whose search found a good region early piles up good
    trials), and tests that treat them as such name a cell type where none is better far
    more often than their level (benchmarks/FAIRNESS.md). ``n`` is then the random phase's
    length per cell type. Otherwise every draw is tested at the per-cell budget.
    """
    finished = [t for g in groups.values() for t in g if t.state.is_finished()]
    kinds = {t.user_attrs.get(Attr.DRAW) for t in finished}
    # every finished trial says its kind (a study begun before draws were recorded does
    # not: all its draws count), and some are adaptive (else all of them are random)
    random_only = Draw.ADAPTIVE in kinds and None not in kinds
    if random_only:
        groups = {
            cell: [t for t in g if t.user_attrs.get(Attr.DRAW) == Draw.RANDOM]
            for cell, g in groups.items()
        }
    draws = {cell: report_cells.draws_of(g, maximize) for cell, g in groups.items()}
    draws = {cell: d for cell, d in draws.items() if d.size}
    n = budget
    if random_only:
        seen = max((d.size for d in draws.values()), default=1)
        n = min(budget, context.random_draws or seen)
    return draws, max(1, n), random_only


def _group(
    trials: Sequence[FrozenTrial], cell_types: tuple[str, ...]
) -> tuple[dict[str, list[FrozenTrial]], list[FrozenTrial]]:
    """Trials per cell type (searched types first, in order), and those without one."""
    groups: dict[str, list[FrozenTrial]] = {cell: [] for cell in cell_types}
    unknown: list[FrozenTrial] = []
    for trial in trials:
        cell = cell_of(trial)
        if cell is None:
            unknown.append(trial)
        else:
            groups.setdefault(cell, []).append(trial)
    return groups, unknown


def _study_section(
    trials: Sequence[FrozenTrial], context: ReportContext, n_finished: int
) -> StudyFacts:
    return StudyFacts(
        **asdict(context),
        counts=report_cells.state_counts(trials),
        trial_counts=report_details.trial_counts(trials),
        n_finished=n_finished,
        partial=context.status != "completed",
    )


def _notes(
    groups: dict[str, list[FrozenTrial]],
    unknown: list[FrozenTrial],
    cells: list[CellSummary],
    comparison: CellComparison | None,
    reevaluation: Reevaluation | None,
) -> list[str]:
    out = [
        "Every finished search trial counts as one draw of its cell type's search: a pruned, "
        "diverged or failed draw can never be the best (it ranks below every completed "
        "trial). The expected best after n trials and P(best of n beats) count them so; the "
        "best value and the median are those of the completed trials; pruned trials' values "
        "at pruning are reported separately.",
        "Requeued trials (stale: a worker died; interrupted: paused or stopped) are not draws: "
        "they ran again. Intervals and probabilities resting on fewer than two completed "
        "trials are not shown.",
    ]
    empty = [cell for cell, group in groups.items() if not group]
    if empty:
        out.append(f"No trials yet for: {', '.join(empty)}.")
    if unknown:
        out.append(f"{len(unknown)} trial(s) carry no cell type and are left out per cell.")
    if any(c.expected_best_at_budget and c.expected_best_at_budget.extrapolated for c in cells):
        out.append(
            "Some cell types have fewer finished trials than the per-cell budget; their "
            "expected best at the budget is extrapolated from the trials seen."
        )
    if comparison is not None:
        out.append(
            f"Comparison: {comparison.test} (alpha {report_compare.ALPHA}); "
            f"P(A beats B) is for the best of {comparison.n} {comparison.unit} each."
        )
        if comparison.random_only:
            out.append(
                f"The comparison rests on each cell type's random draws: its first "
                f"{comparison.n} trials, drawn at random from the search space before "
                "the sampler began to propose configurations from earlier trials (the "
                "sampler's later trials depend on earlier ones, so tests treating them as "
                "independent would find differences that are not there). The best values, "
                "medians and the expected best per cell use every trial."
            )
    if reevaluation is not None:
        out.append(
            f"Seed re-evaluation: the {reevaluation.top_k} best configurations of each cell "
            f"type retrained with {reevaluation.seeds} fresh seeds "
            f"({reevaluation.finished} runs finished). "
            + (
                "The verdict rests on it."
                if reevaluation.complete
                else "Until it has finished, the verdict rests on the search."
            )
        )
    return out


def _allocation(trials: Sequence[FrozenTrial]) -> Allocation:
    """Cell type of every trial by trial number and by completion order."""
    ordered = sorted(trials, key=lambda t: t.number)
    finished = sorted(
        (t for t in trials if t.datetime_complete is not None),
        key=lambda t: (t.datetime_complete, t.number),
    )
    rank = {t.number: i + 1 for i, t in enumerate(finished)}
    by_number: dict[str, list[int]] = {}
    by_completion: dict[str, list[int]] = {}
    for trial in ordered:
        cell = cell_of(trial) or "(none)"
        by_number.setdefault(cell, []).append(trial.number)
        if trial.number in rank:
            by_completion.setdefault(cell, []).append(rank[trial.number])
    for ranks in by_completion.values():
        ranks.sort()
    return Allocation(trial_number=by_number, completion_rank=by_completion)


def _environment(
    trials: Sequence[FrozenTrial], context: ReportContext, n_bootstrap: int
) -> Environment:
    def seen(key: Attr) -> list[str]:
        return sorted({str(t.user_attrs[key]) for t in trials if key in t.user_attrs})

    devices = Counter(str(t.user_attrs[Attr.DEVICE]) for t in trials if Attr.DEVICE in t.user_attrs)
    precisions = Counter(
        str(t.user_attrs[Attr.PRECISION]) for t in trials if Attr.PRECISION in t.user_attrs
    )
    return Environment(
        torch_versions=seen(Attr.TORCH_VERSION),
        cellsearch_versions=seen(Attr.CELLSEARCH_VERSION),
        optuna_version=optuna.__version__,
        report_cellsearch_version=cellsearch.__version__,
        devices=dict(sorted(devices.items())),
        study_seed=context.seed,
        trial_seeds_recorded=sum(Attr.SEED in t.user_attrs for t in trials),
        precisions=dict(sorted(precisions.items())),
        bootstrap=BootstrapInfo(replicates=n_bootstrap, seed=(context.seed, "cell index")),
    )


def _importance(
    groups: dict[str, list[FrozenTrial]], maximize: bool, seed: int
) -> ImportanceSection:
    completed = {cell: report_cells.completed_values(g)[0] for cell, g in groups.items()}
    everything = [t for done in completed.values() for t in done]
    everything.sort(key=lambda t: t.number)
    overall = report_importance.param_importances(everything, maximize=maximize, seed=seed)
    per_cell = {
        cell: report_importance.param_importances(
            done, maximize=maximize, seed=seed, exclude=(CELL_PARAM,)
        )
        for cell, done in completed.items()
    }
    return ImportanceSection(
        method=report_importance.METHOD,
        overall=overall,
        cell_type=report_importance.cell_type_rank(overall),
        per_cell=per_cell,
    )
