"""Across-cell-type part of the comparison report: pairwise tests and the verdict.

Draws. Every finished search trial of a cell type is one draw of its search; pruned,
diverged and errored draws count as failed draws, worse than every completed one (see
:mod:`.draw_stats`). Statistics therefore compare whole search procedures, and a cell
type that is pruned or diverges more often is not flattered by its survivors.

Effect size. ``p_best_of_n`` is the probability that the best of ``n`` draws (with
replacement) of A beats the best of ``n`` draws of B, ties counting one half, computed
exactly from the two empirical distributions with failed draws at the bottom. ``n`` is
the common per-cell budget: the planned number of trials divided by the number of
searched cell types (at least 1). ``p_single`` is the same for ``n = 1``.

Significance. A two-sided permutation test of ``P(best of n beats)`` on each pair, on ranks
in which failed draws tie below every completed draw (for ``n = 1`` this is Gehan's
generalised Wilcoxon for this censoring; :mod:`.permutation`), with Holm's correction
over all pairs tested (family-wise alpha 0.05). Pairs where either side has fewer than
``MIN_TEST_SIZE`` completed draws are not tested, and no leader is named from them.

With seed re-evaluation, the verdict rests on the retrained best configuration of each
cell type instead: its per-seed values are compared with the same test.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Any

from cellsearch.search.report import design_power, draw_stats, stats
from cellsearch.search.report.model import CellComparison, CellSummary, PairTest, SeedComparison
from cellsearch.search.report.permutation import comparison_test

ALPHA = 0.05
MIN_TEST_SIZE = 3
TEST_NAME = (
    "two-sided permutation test of P(best of n beats) on ranks in which pruned, diverged "
    "and failed draws tie below every completed one, Holm-corrected"
)
NO_DIFFERENCE = "No detectable difference at this budget"


def compare_cells(
    draws: dict[str, draw_stats.Draws], *, budget: int, random_only: bool = False
) -> CellComparison:
    """Pairwise effect sizes and Holm-corrected tests between cell types.

    Args:
        draws: Finished draws per cell type (cells with no draw omitted).
        budget: The common per-cell budget ``n`` of the best-of-n probability.
        random_only: Whether ``draws`` are the random phase's draws only (it says so in
            the test's name and the verdict).

    Returns:
        The comparison; each pair holds ``a``, ``b``, draw counts (``n_a``, ``n_b``:
        completed; ``draws_a``, ``draws_b``: all), ``p_best_of_n`` and ``p_single``
        (probability that A beats B; None when either side has fewer than two completed
        draws), ``p_value``, ``p_adjusted``, ``reject`` and ``better`` (the winning cell
        type when rejected, else None).
    """
    pairs = [_pair(a, b, draws[a], draws[b], budget) for a, b in combinations(sorted(draws), 2)]
    test = f"{TEST_NAME}, on the random draws only" if random_only else TEST_NAME
    return CellComparison(
        n=budget, alpha=ALPHA, test=test, random_only=random_only, pairs=_holm(pairs)
    )


def _pair(
    a: str, b: str, da: draw_stats.Draws, db: draw_stats.Draws, budget: int
) -> dict[str, Any]:
    pair: dict[str, Any] = {
        "a": a,
        "b": b,
        "n_a": da.n_completed,
        "n_b": db.n_completed,
        "draws_a": da.size,
        "draws_b": db.size,
        "p_best_of_n": draw_stats.shown(draw_stats.p_best_of_n_beats(da, db, budget), da, db),
        "p_single": None,
        "p_value": None,
        "p_adjusted": None,
        "reject": False,
        "better": None,
        "method": None,
    }
    if min(da.n_completed, db.n_completed) >= MIN_TEST_SIZE:
        single = draw_stats.censored_rank_test(da, db)
        test = comparison_test(da, db, budget)
        pair.update(p_single=single.effect, p_value=test.p_value, method=test.method)
    return pair


def _holm(pairs: list[dict[str, Any]]) -> list[PairTest]:
    """Holm-correct the tested pairs and name the better cell of each rejection."""
    tested = [p for p in pairs if p["p_value"] is not None]
    adjusted, reject = stats.holm([p["p_value"] for p in tested], ALPHA)
    for pair, p_adj, rej in zip(tested, adjusted, reject, strict=True):
        pair["p_adjusted"] = float(p_adj)
        pair["reject"] = bool(rej)
        if rej:
            effect = pair["p_best_of_n"] if pair["p_best_of_n"] is not None else pair["p_single"]
            pair["better"] = pair["a"] if effect > 0.5 else pair["b"]
    return [PairTest(**pair) for pair in pairs]


def leader(
    cells: Sequence[CellSummary], draws: dict[str, draw_stats.Draws], n: int, maximize: bool
) -> str | None:
    """The cell type whose tested ``draws`` give the best expected best of ``n`` (the
    draws and ``n`` the tests compare), among those with at least ``MIN_TEST_SIZE``
    completed trials; ties go to the better best value."""
    expected: dict[str, float] = {}
    for c in cells:
        tested = draws.get(c.cell_type)
        if c.n_completed >= MIN_TEST_SIZE and tested is not None and tested.n_completed:
            expected[c.cell_type] = draw_stats.expected_best(tested, [n])["mean"][0]
    if not expected:
        return None
    sign = 1.0 if maximize else -1.0

    def rank(c: CellSummary) -> tuple[float, float]:
        best = c.best.value if c.best is not None else 0.0  # every ranked cell has a best
        return sign * expected[c.cell_type], sign * best

    return max((c for c in cells if c.cell_type in expected), key=rank).cell_type


def _names(cells: list[str]) -> str:
    return ", ".join(cells)


def missing_evidence(cells: Sequence[CellSummary]) -> list[str]:
    """One phrase per cell type with too few completed draws to compare, e.g.
    ``"lstm: 1 of 10 trials completed (9 pruned)"``."""
    out = []
    for c in cells:
        if c.n_completed >= MIN_TEST_SIZE:
            continue
        lost = {"pruned": c.counts.pruned, **dict(c.failures)}
        why = ", ".join(f"{n} {kind}" for kind, n in lost.items() if n and kind != "stale")
        out.append(
            f"{c.cell_type}: {c.n_completed} of {c.draws.n} trials completed"
            + (f" ({why})" if why else "")
        )
    return out


def verdict(
    comparison: CellComparison | None,
    *,
    cells: Sequence[CellSummary],
    lead: str | None,
    n_finished: int,
) -> tuple[str, str | None]:
    """The one-line verdict sentence of the report, and the cell type it names as the
    leader (if any); search trials (see :func:`reevaluation_verdict` for re-evaluated
    studies).

    Args:
        comparison: Output of :func:`compare_cells`, or None with fewer than two cell
            types with draws.
        cells: The per-cell summaries.
        lead: The leading cell type (see :func:`leader`).
        n_finished: Finished trials in the study (complete, pruned or failed).
    """
    if n_finished == 0:
        return "No finished trials yet: nothing to compare.", None
    missing = missing_evidence(cells)
    if missing:
        return (
            "Not enough completed trials to compare cell types (each needs "
            f"{MIN_TEST_SIZE}): {'; '.join(missing)}. Run more trials (budget.n_trials), "
            "raise pruning.min_complete_per_cell, or use pruner: none."
        ), None
    if comparison is not None and lead is None and comparison.random_only:
        return (
            "No cell type completed any of its random draws, on which the tests rest: "
            "nothing to compare."
        ), None
    if comparison is None or lead is None:
        return "Only one cell type has finished trials: nothing to compare.", None
    return _tested_verdict(comparison, lead, [c.cell_type for c in cells], comparison.unit)


def _tested_verdict(
    comparison: CellComparison | SeedComparison, lead: str, compared: list[str], unit: str
) -> tuple[str, str | None]:
    n, pairs = comparison.n, comparison.pairs
    method = f"{n} {unit} per cell type; {comparison.test}, alpha {ALPHA}"
    detected = [p for p in pairs if p.reject]
    if not detected:
        return _no_difference(pairs, compared, unit, method), None
    beaten = [p.b if p.a == lead else p.a for p in detected if p.better == lead]
    tied = [c for c in compared if c != lead and c not in beaten]
    if beaten and not tied:
        return f"{lead} is best: better than {_names(beaten)} ({method}).", lead
    if beaten:
        return (
            f"{lead} leads: better than {_names(beaten)}; no detectable difference "
            f"from {_names(tied)} at this budget ({method})."
        ), lead
    others = "; ".join(
        f"{p.better} better than {p.b if p.better == p.a else p.a}" for p in detected
    )
    return (
        f"No cell type is best overall; detected: {others}; no other pair differs at this "
        f"budget ({method})."
    ), None


def _no_difference(pairs: list[PairTest], compared: list[str], unit: str, method: str) -> str:
    """The sentence when no pair differs: why, and what would tell them apart."""
    m = max(1, len(pairs))
    smallest = min(min(p.draws_a, p.draws_b) for p in pairs)
    attainable = design_power.min_attainable_p(smallest, smallest)
    needed = design_power.trials_needed(m, ALPHA)
    if attainable > ALPHA / m:
        return (
            f"The design cannot detect a difference between {_names(compared)}: with "
            f"{smallest} {unit} per cell type the smallest p-value the test can give is "
            f"{attainable:.2g}, above the {ALPHA / m:.2g} that Holm's correction needs for "
            f"{m} pair(s); at least {needed} {unit} per cell type are needed."
        )
    effects = [p.p_single for p in pairs if p.p_single is not None]
    largest = max(effects, key=lambda e: abs(e - 0.5), default=0.5)
    power = design_power.trials_for_power(largest, m_pairs=m, alpha=ALPHA)
    hint = (
        f"; the largest observed effect (P(one beats the other) = {largest:.2f}) would need "
        f"about {power} {unit} per cell type for 80% power"
        if power is not None
        else ""
    )
    return f"{NO_DIFFERENCE} between {_names(compared)} ({method}){hint}."


def compare_reevaluated(
    seeds: dict[str, draw_stats.Draws], *, n_seeds: int
) -> SeedComparison | None:
    """Pairwise tests on the per-seed values of each cell type's retrained best
    configuration (failed seeds count as failed draws); None with fewer than two."""
    if len(seeds) < 2:
        return None
    pairs = [_pair(a, b, seeds[a], seeds[b], 1) for a, b in combinations(sorted(seeds), 2)]
    test = TEST_NAME.replace("draws", "seeds")
    return SeedComparison(n=n_seeds, alpha=ALPHA, test=test, pairs=_holm(pairs))


def reevaluation_verdict(
    comparison: SeedComparison, means: dict[str, float], maximize: bool
) -> tuple[str, str | None]:
    """The verdict from re-evaluated configurations (it says that it rests on them)."""
    sign = 1.0 if maximize else -1.0
    lead = max(means, key=lambda cell: sign * means[cell])
    body, named = _tested_verdict(comparison, lead, sorted(means), "seeds")
    return f"After re-evaluation of each cell type's best configuration: {body}", named
