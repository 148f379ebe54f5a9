"""The seed re-evaluation section of the report.

Each cell type's ``top_k`` best search configurations were retrained with ``seeds`` fresh
seeds (:mod:`cellsearch.search.study.reevaluation`). Per configuration: the validation
value and the test metric over seeds (mean, sample standard deviation, seeded bootstrap
interval of the mean over seeds). Per cell type, the *selected* configuration is the one
with the best re-evaluated mean; the verdict then compares the selected configurations'
per-seed values (a diverged or failed seed counts as a failed draw). Choosing the best of
``top_k`` re-evaluated means still favours luck a little; with few configurations and
several seeds much less than picking the best of all search trials.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.record import (
    COUNTED_FAILURES,
    TrialRecord,
    failure_kind,
    finite,
    is_reevaluation,
)
from cellsearch.search.report import compare, draw_stats, stats
from cellsearch.search.report.model import (
    ReevaluatedCell,
    ReevaluatedConfiguration,
    Reevaluation,
    SeedSummary,
)


def summarise(
    trials: Sequence[FrozenTrial],
    *,
    top_k: int,
    seeds: int,
    maximize: bool,
    complete: bool,
    seed: int = 0,
) -> Reevaluation:
    """The re-evaluation section (see the module docstring).

    Args:
        trials: Every trial of the study (search trials give the configurations' search
            values; re-evaluation trials the retrained ones).
        top_k: Configurations re-evaluated per cell type.
        seeds: Seeds per configuration.
        maximize: Direction of the objective.
        complete: Whether the study has finished (every planned job ran).
        seed: Seed of the bootstrap intervals.
    """
    by_number = {t.number: t for t in trials}
    runs: dict[str, dict[int, list[FrozenTrial]]] = defaultdict(lambda: defaultdict(list))
    for t in trials:
        if is_reevaluation(t) and t.state in (TrialState.COMPLETE, TrialState.FAIL):
            if t.state == TrialState.FAIL and failure_kind(t) not in COUNTED_FAILURES:
                continue  # requeued: its copy runs the job again
            record = TrialRecord.of(t)
            if record.reevaluation_of is not None and record.cell_type is not None:
                runs[record.cell_type][record.reevaluation_of].append(t)
    cells: dict[str, ReevaluatedCell] = {}
    selected: dict[str, draw_stats.Draws] = {}
    means: dict[str, float] = {}
    for index, (cell, configs) in enumerate(sorted(runs.items())):
        summaries = [
            _configuration(of, by_number.get(of), done, maximize, [seed, index, of])
            for of, done in configs.items()
        ]
        summaries.sort(key=lambda s: _order(s[0], maximize))
        best, best_draws = summaries[0]
        cells[cell] = ReevaluatedCell(configurations=[c for c, _ in summaries], selected=best.of)
        if best.val is not None:
            selected[cell] = best_draws
            means[cell] = best.val.mean
    finished = sum(len(done) for configs in runs.values() for done in configs.values())
    return Reevaluation(
        top_k=top_k,
        seeds=seeds,
        finished=finished,
        complete=complete,
        cells=cells,
        comparison=compare.compare_reevaluated(selected, n_seeds=seeds),
        means=means,
    )


def _order(summary: ReevaluatedConfiguration, maximize: bool) -> tuple[float, int]:
    if summary.val is None:
        return (math.inf, summary.of)
    return (-summary.val.mean if maximize else summary.val.mean, summary.of)


def _configuration(
    of: int,
    source: FrozenTrial | None,
    done: list[FrozenTrial],
    maximize: bool,
    seed: list[int],
) -> tuple[ReevaluatedConfiguration, draw_stats.Draws]:
    """One configuration's summary, and its per-seed values as draws (for the tests)."""
    completed = [TrialRecord.of(t) for t in done if t.state == TrialState.COMPLETE]
    values = [float(r.value) for r in completed if r.value is not None]
    tests = [r.test_metric for r in completed if r.test_metric is not None]
    failed = len(done) - len(values)
    summary = ReevaluatedConfiguration(
        of=of,
        params=dict(source.params) if source is not None else None,
        search_value=finite(source.value) if source is not None else None,
        seeds_finished=len(done),
        failed=failed,
        val=SeedSummary(**stats.seed_summary(values, seed=seed)) if values else None,
        test=SeedSummary(**stats.seed_summary(tests, seed=seed)) if tests else None,
    )
    return summary, draw_stats.Draws.of(values, failed, maximize=maximize)


def verdict(section: Reevaluation, maximize: bool) -> tuple[str, str | None] | None:
    """The verdict from the re-evaluation, or None while it cannot carry one (not finished,
    fewer than two cell types, or too few completed seeds)."""
    comparison = section.comparison
    if not section.complete or comparison is None:
        return None
    if any(min(p.n_a, p.n_b) < compare.MIN_TEST_SIZE for p in comparison.pairs):
        return None
    return compare.reevaluation_verdict(comparison, section.means, maximize)
