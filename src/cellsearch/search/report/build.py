"""The comparison report: does the cell type matter, which one wins, how sure are we?

:func:`build_report` turns a study's trials into a
:class:`~cellsearch.search.report.model.StudyReport` (no NaN or infinity: missing numbers
are ``None``; :meth:`~cellsearch.search.report.model.ReportModel.to_json` gives its JSON).
Sections:

- ``study``: name, direction, metric (``metric_label`` in words, ``metric_low`` and
  ``metric_high`` its bounds), budget, allocation, status, counts by state (``counts``
  by Optuna state; ``trial_counts`` as the service counts them), the hyperparameters the
  spec fixes (``fixed_params``), the task's ``baseline`` of the objective, the margin
  ``min_gain`` and whether any cell type ``learned`` the task
  (:mod:`cellsearch.search.report.learning`), ``partial`` (True unless the service
  marked the study completed).
- ``verdict``: one sentence; "No cell type learned this task at this budget" (with the
  best value, the baseline and what to change) when none did, naming no leader;
  otherwise "No detectable difference at this budget" when no corrected test rejects,
  with what the design could detect; it never names a leader from fewer than three
  completed trials per cell type, nor one that did not learn the task, and rests on the
  seed re-evaluation when the study has one.
- ``warnings`` (things that change how to read the numbers, among them each cell type
  that did not learn the task while another did) and ``notes``.
- ``cells``: one summary per cell type (see :mod:`cellsearch.search.report.cells`),
  with ``n_beat_baseline`` (completed trials that beat the baseline by the margin),
  ``learned``, ``best_gain`` and the best trial's ``hyperparameters`` (every one, fixed
  ones included).
- ``comparison``: pairwise best-of-n probabilities and Holm-corrected tests on every
  finished draw (see :mod:`cellsearch.search.report.compare`), or None with fewer than
  two cell types with finished trials.
- ``reevaluation``: the seed re-evaluation (see :mod:`.reevaluated`), or None.
- ``importance``: overall and per cell type, each share with its interval and each
  effect tested against permuted values (see :mod:`cellsearch.search.report.importance`).
- ``allocation``: which cell type each trial used, by trial number and by
  completion order.
- ``environment``: versions, devices and seeds.
- ``trials``: one row per trial, column by column (see
  :func:`cellsearch.search.report.details.trial_table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from optuna.trial import FrozenTrial

from cellsearch.search.record import CELL_PARAM, Attr, Draw, cell_of, is_counted, search_trials
from cellsearch.search.report import caveats, draw_stats, learning, reevaluated, warm
from cellsearch.search.report import cells as report_cells
from cellsearch.search.report import compare as report_compare
from cellsearch.search.report import details as report_details
from cellsearch.search.report import importance as report_importance
from cellsearch.search.report.context import ReportContext
from cellsearch.search.report.model import (
    SCHEMA_VERSION,
    CellComparison,
    CellSummary,
    ImportanceSection,
    Reevaluation,
    StudyFacts,
    StudyReport,
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
    margin = _margin(context)
    cells = [
        report_cells.summarise_cell(
            cell,
            group,
            maximize=maximize,
            budget=budget,
            n_bootstrap=n_bootstrap,
            seed=[context.seed, index],
            margin=margin,
            fixed_params=context.fixed_params,
        )
        for index, (cell, group) in enumerate(groups.items())
    ]
    draws, tested_n, random_only = _tested_draws(groups, context, maximize, budget)
    comparison = None
    if len(draws) >= 2:
        comparison = report_compare.compare_cells(draws, budget=tested_n, random_only=random_only)
    n_finished = sum(is_counted(t) for t in search)  # as the service counts them
    learned = _learned(cells)
    verdict, leader = _verdict(context, cells, comparison, draws, tested_n, n_finished)
    reevaluation = None
    if context.reevaluate is not None:
        top_k, seeds = context.reevaluate
        reevaluation = reevaluated.summarise(
            trials, top_k=top_k, seeds=seeds, maximize=maximize,
            complete=context.status == "completed", seed=context.seed,
        )  # fmt: skip
        if learned is not False:  # a study nobody learned keeps saying so
            verdict, leader = reevaluated.verdict(reevaluation, maximize) or (verdict, leader)
    bests = _bests(cells)
    return StudyReport(
        schema_version=SCHEMA_VERSION,
        study=_study_section(search, context, n_finished, learned),
        verdict=verdict,
        leader=leader,
        warnings=(
            caveats.partial(context.status, n_finished, context.n_trials)
            + caveats.adaptive(context.allocation)
            + caveats.pruning_rates(cells)
            + caveats.range_edges(cells, context.ranges)
            + (learning.unlearned_warnings(bests, margin, label=_label(context)) if learned else [])
        ),
        notes=_notes(groups, unknown, cells, comparison, reevaluation),
        cells=cells,
        comparison=comparison,
        reevaluation=reevaluation,
        importance=_importance(groups, maximize, context.seed) if importance else None,
        allocation=report_details.allocation(search),
        environment=report_details.environment(trials, context.seed, n_bootstrap),
        trials=report_details.trial_table(trials) if trial_table else None,
    )


def _margin(context: ReportContext) -> learning.Margin:
    return learning.Margin.of(
        context.baseline,
        low=context.metric_low,
        high=context.metric_high,
        min_gain=context.min_gain,
        maximize=context.direction == "maximize",
    )


def _label(context: ReportContext) -> str:
    return context.metric_label or context.metric


def _learned(cells: Sequence[CellSummary]) -> bool | None:
    """Whether any cell type learned the task: None when none can be judged (no baseline,
    no completed trial)."""
    judged = [c.learned for c in cells if c.learned is not None]
    return any(judged) if judged else None


def _bests(cells: Sequence[CellSummary]) -> list[learning.CellBest]:
    return [
        learning.CellBest(c.cell_type, c.best.value, c.best.trial_number)
        for c in cells
        if c.best is not None
    ]


def _verdict(
    context: ReportContext,
    cells: list[CellSummary],
    comparison: CellComparison | None,
    draws: dict[str, draw_stats.Draws],
    tested_n: int,
    n_finished: int,
) -> tuple[str, str | None]:
    """The search's verdict: no leader in a study that no cell type learned, and none
    among the cell types that did not learn."""
    maximize = context.direction == "maximize"
    if n_finished and _learned(cells) is False:
        text = learning.unlearned_verdict(
            _bests(cells),
            _margin(context),
            label=_label(context),
            baseline_description=context.baseline_description,
            partial=context.status != "completed",
        )
        return text, None
    learners = [c for c in cells if c.learned is not False]
    lead = report_compare.leader(learners, draws, tested_n, maximize)
    return report_compare.verdict(comparison, cells=cells, lead=lead, n_finished=n_finished)


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
    length per cell type. Otherwise every draw is tested at the per-cell budget. A draw
    proposed from a warm start's seeds is never tested (:mod:`.warm`).
    """
    groups = {cell: warm.tested(g) for cell, g in groups.items()}  # no draw proposed from seeds
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
    trials: Sequence[FrozenTrial], context: ReportContext, n_finished: int, learned: bool | None
) -> StudyFacts:
    return StudyFacts(
        **asdict(context),
        learned=learned,
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
    warm_start = warm.note([t for g in groups.values() for t in g])
    if warm_start is not None:
        out.append(warm_start)
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
        level=report_importance.LEVEL,
        bootstrap=report_importance.BOOTSTRAP,
        permutations=report_importance.PERMUTATIONS,
        min_trials_to_tell=report_importance.MIN_TRIALS_TO_TELL,
        overall=overall,
        cell_type=report_importance.cell_type_rank(overall),
        per_cell=per_cell,
    )
