"""Cross-task ("suite") statistics: normalised scores, ranks, Friedman, Wilcoxon-Holm, CD.

Pure numpy/scipy. The input is a results matrix ``scores`` of shape ``(N, k)``: one
row per task, one column per cell type, each task in its own units, with a direction
flag per task (``maximize[i]``). Minimised tasks are mirrored (negated) internally,
so "best" is always the largest mirrored value. NaN means "this cell type has no
score on this task".

Missing scores (documented choice): a cell type with no score on any task is left
out of the comparison; after that, every task that lacks a score for one of the
remaining cell types is dropped from ranks and tests (listwise deletion, as the
Friedman test needs complete blocks). Both are reported by name.

The procedure follows Demsar (2006) and Benavoli, Corani & Mangili (2016): rank the
cell types on each task (1 = best, ties get average ranks), test the average ranks
with the Friedman test, and compare every pair with a two-sided Wilcoxon
signed-rank test on the normalised scores, Holm-corrected; a pair counts as
separated when Holm rejects it and the Friedman test rejected. The
critical-difference diagram joins cell types that no corrected test separates, as
in the UCR "bake off" (Bagnall et al. 2017). Entry point: :func:`compare_over_tasks`;
:func:`cellsearch.search.report.cd_diagram.cd_diagram_svg` draws its result.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as sps

from cellsearch.search.report.rank_tests import (
    BoolArray,
    FloatArray,
    cliques,
    critical_difference,
    friedman,
    minimum_tasks,
    nemenyi_q,
    signed_rank_batch,
)
from cellsearch.search.report.stats import holm
from cellsearch.search.report.suite_model import (
    CriticalDifference,
    FriedmanTest,
    RankPair,
    SuiteComparison,
)


def _orient(scores: ArrayLike, maximize: Sequence[bool]) -> FloatArray:
    """Return the ``(N, k)`` scores mirrored so that larger is better on every task."""
    values = np.array(scores, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError("scores must be a 2-D matrix (tasks x cell types)")
    flags = np.asarray(maximize, dtype=bool).ravel()
    if flags.size != values.shape[0]:
        raise ValueError(f"maximize has {flags.size} flags for {values.shape[0]} tasks")
    if np.any(np.isinf(values)):
        raise ValueError("scores must be finite or NaN (missing)")
    return np.where(flags[:, None], values, -values)


def _reference(
    oriented: FloatArray, maximize: Sequence[bool], baselines: Sequence[float | None] | None
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """Per task: best mirrored score, the reference (0) point, and whether it is the baseline."""
    n_tasks = oriented.shape[0]
    present = ~np.isnan(oriented)
    filled_hi = np.where(present, oriented, -np.inf)
    filled_lo = np.where(present, oriented, np.inf)
    best = filled_hi.max(axis=1, initial=-np.inf)  # (N,)
    worst = filled_lo.min(axis=1, initial=np.inf)  # (N,)
    base = np.full(n_tasks, np.nan)
    if baselines is not None:
        if len(baselines) != n_tasks:
            raise ValueError(f"baselines has {len(baselines)} entries for {n_tasks} tasks")
        raw = np.array([np.nan if b is None else float(b) for b in baselines])
        base = np.where(np.asarray(maximize, dtype=bool), raw, -raw)
    use_base = np.isfinite(base) & (base < best)
    return best, np.where(use_base, base, worst), use_base


def task_scale(
    scores: ArrayLike,
    maximize: Sequence[bool],
    baselines: Sequence[float | None] | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The per-task affine map of :func:`normalise`, in mirrored units.

    A score ``s`` of task ``i`` (negated when the task is minimised) normalises to
    ``(s - ref[i]) / span[i]``; use it to carry intervals onto the normalised scale.

    Returns:
        ``(ref, span)``, each of shape ``(N,)``; ``span`` is 0 where every cell scores
        the same and not finite where a task has no score at all.
    """
    oriented = _orient(scores, maximize)
    best, ref, _ = _reference(oriented, maximize, baselines)
    return ref, best - ref


def normalise(
    scores: ArrayLike,
    maximize: Sequence[bool],
    baselines: Sequence[float | None] | None = None,
) -> FloatArray:
    """Per-task normalised scores, comparable across tasks with different metrics.

    With ``s`` a mirrored score (negated on minimised tasks), ``best`` the best
    mirrored score on the task and ``ref`` the task's mirrored trivial baseline
    (when given, finite and below ``best``) or else the worst cell's score:

    ``n = (s - ref) / (best - ref)``

    so the best cell scores 1, the baseline (or the worst cell) 0, and a cell worse
    than the baseline is negative. When every cell scores the same (``best == ref``)
    all get 1. Ranks never depend on this; the Wilcoxon tests do (they compare
    differences across tasks, which needs a common scale).

    Args:
        scores: ``(N tasks, k cells)`` scores in each task's units; NaN = missing.
        maximize: One flag per task, True when higher is better.
        baselines: Optional trivial-baseline score per task (original units), None
            where there is none.

    Returns:
        ``(N, k)`` array, NaN where the score is missing.
    """
    oriented = _orient(scores, maximize)
    ref, span = task_scale(scores, maximize, baselines)
    flat = ~(span > 0)  # all cells equal (or no scores)
    safe = np.where(flat, 1.0, span)
    out = (oriented - ref[:, None]) / safe[:, None]
    return np.where(flat[:, None] & ~np.isnan(oriented), 1.0, out)


def task_ranks(scores: ArrayLike, maximize: Sequence[bool]) -> FloatArray:
    """Rank the cell types on each task: 1 = best, ties share their average rank.

    Args:
        scores: ``(N, k)`` scores without missing values.
        maximize: One flag per task.

    Returns:
        ``(N, k)`` ranks; each row sums to ``k (k + 1) / 2``.
    """
    oriented = _orient(scores, maximize)
    if np.any(np.isnan(oriented)):
        raise ValueError("ranks need a score for every cell type on every task")
    return np.asarray(sps.rankdata(-oriented, method="average", axis=1), dtype=np.float64)


def _pairs(
    norm: FloatArray, avg: FloatArray, names: Sequence[str], alpha: float, tie_tol: float
) -> list[dict[str, Any]]:
    """Wilcoxon signed-rank + Holm for every pair of columns of ``norm`` ``(N, k)``."""
    index = list(itertools.combinations(range(norm.shape[1]), 2))
    first, second = (np.array(side, dtype=np.int64) for side in zip(*index, strict=True))
    raw = (norm[:, first] - norm[:, second]).T  # (pairs, N)
    diffs = np.where(np.abs(raw) <= tie_tol, 0.0, raw)
    p, r_plus, r_minus = signed_rank_batch(diffs)
    adjusted, reject = holm(p, alpha)
    rows: list[dict[str, Any]] = []
    for row, (a, b) in enumerate(index):
        d, lead = diffs[row], r_plus[row] - r_minus[row]
        rows.append(
            {
                "a": names[a],
                "b": names[b],
                "statistic": float(min(r_plus[row], r_minus[row])),
                "p_value": float(p[row]),
                "p_adjusted": float(adjusted[row]),
                "reject": bool(reject[row]),
                "favours": None if lead == 0 else names[a] if lead > 0 else names[b],
                "wins": int(np.sum(d > 0)),
                "ties": int(np.sum(d == 0)),
                "losses": int(np.sum(d < 0)),
                "mean_difference": float(raw[row].mean()),
                "average_rank_difference": float(avg[b] - avg[a]),
            }
        )
    return rows


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.2g}"


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _verdict_separated(
    order: list[str],
    avg: Mapping[str, float | None],
    beats: Mapping[str, list[str]],
    n: int,
    test: str,
) -> str:
    """Verdict when at least one corrected test separates a pair."""
    top = order[0]
    others = order[1:]
    lost_to_top = beats.get(top, [])
    mates = [c for c in others if c not in lost_to_top and top not in beats.get(c, [])]
    lead = f"over {n} tasks (average rank {avg[top]:.2f}; {test})"
    if len(order) == 2:
        winner = next(iter(beats))
        return f"{winner} beats {beats[winner][0]} over {n} tasks ({test})"
    parts: list[str] = []
    if len(lost_to_top) == len(others):
        parts.append(f"{top} ranks best {lead} and beats every other cell type")
    elif lost_to_top:
        parts += [f"{top} ranks best {lead}", f"it beats {_join(lost_to_top)}"]
    else:
        parts.append(f"no cell type is best over {n} tasks ({test})")
    if len(mates) == 1:
        parts.append(f"{top} and {mates[0]} are indistinguishable")
    elif mates:
        parts.append(f"{top} is indistinguishable from {_join(mates)}")
    parts += [f"{w} beats {_join(beats[w])}" for w in others if beats.get(w)]
    return "; ".join(parts)


def _verdict(res: SuiteComparison) -> str:
    """The one-sentence summary; names a winner only where a corrected test supports it."""
    order, min_separate = res.cd.order, res.min_tasks_to_separate
    n, k = res.n_tasks, len(order)
    if k < 2:
        return f"nothing to compare: {k} cell type{'s' if k != 1 else ''} with scores"
    if not res.tested or res.friedman is None:
        complete = " with a score for every cell type" if res.tasks_dropped else ""
        plural = "s" if n != 1 else ""
        return (
            f"too few tasks to test ({n} task{plural}{complete}; "
            f"the tests need at least {res.min_tasks})"
        )
    test = f"Friedman {_fmt_p(res.friedman.p_value)}"
    if k == 2:
        test = f"Wilcoxon {_fmt_p(res.pairs[0].p_value)}"
    beats: dict[str, list[str]] = {}
    for pair in res.pairs:
        if pair.separated and pair.better is not None:
            loser = pair.b if pair.better == pair.a else pair.a
            beats.setdefault(pair.better, []).append(loser)
    for losers in beats.values():
        losers.sort(key=order.index)
    if beats:
        return _verdict_separated(order, res.average_ranks, beats, n, test)
    if k > 2 and res.friedman.reject:
        text = f"the cell types differ over {n} tasks ({test}), but no pair is separated"
        text += " after Holm correction"
    else:
        text = f"{_join(order)} are indistinguishable over {n} tasks ({test})"
    if n < min_separate:
        text += f"; with {k} cell types a pair can be separated only from {min_separate} tasks"
    return text


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # NaN: missing


def _matrix(values: FloatArray) -> list[list[float | None]]:
    """A matrix as rows of floats, None where a value is NaN (missing)."""
    return [[_number(x) for x in row] for row in values.tolist()]


def _post_hoc(
    norm: FloatArray,
    avg: FloatArray,
    names: list[str],
    fried: FriedmanTest,
    alpha: float,
    tie_tol: float,
) -> tuple[list[RankPair], BoolArray]:
    """Pairwise tests with the Friedman gate; returns the pairs and the separation matrix."""
    k = len(names)
    gate = k == 2 or fried.reject
    pairs = []
    separated = np.zeros((k, k), dtype=bool)
    for pair in _pairs(norm, avg, names, alpha, tie_tol):
        pair["separated"] = bool(pair["reject"] and gate)
        pair["better"] = pair["favours"] if pair["reject"] else None
        i, j = names.index(pair["a"]), names.index(pair["b"])
        separated[i, j] = separated[j, i] = pair["separated"]
        pairs.append(RankPair(**pair))
    return pairs, separated


def _cd_data(
    avg: FloatArray, names: list[str], separated: BoolArray, n: int, alpha: float
) -> CriticalDifference:
    """Order by average rank (ties keep input order), cliques and the Nemenyi CD."""
    k = len(names)
    order_idx = sorted(range(k), key=lambda j: (np.nan_to_num(avg[j], nan=np.inf), j))
    return CriticalDifference(
        order=[names[j] for j in order_idx],
        average_ranks=[_number(avg[j]) for j in order_idx],
        cliques=[[names[j] for j in run] for run in cliques(order_idx, separated)],
        q_alpha=nemenyi_q(k, alpha) if k >= 2 else None,
        critical_difference=critical_difference(k, n, alpha) if k >= 2 and n else None,
    )


def compare_over_tasks(
    scores: ArrayLike,
    maximize: Sequence[bool],
    cells: Sequence[str],
    tasks: Sequence[str] | None = None,
    *,
    baselines: Sequence[float | None] | None = None,
    alpha: float = 0.05,
    tie_tol: float = 0.0,
) -> SuiteComparison:
    """Compare cell types over tasks: the whole suite analysis.

    The tests run only with at least two cell types and ``minimum_tasks(alpha)``
    complete tasks (6 at 0.05: below that no two-sided signed-rank test can reach
    ``alpha``). Post-hoc pairs count as ``separated`` when Holm rejects them and the
    Friedman test rejects too (the usual gate, Demsar 2006); with two cell types the
    single Wilcoxon test decides. Cliques and the verdict use ``separated``.

    Args:
        scores: ``(N tasks, k cells)`` in each task's units; NaN = no score.
        maximize: One flag per task, True when higher is better.
        cells: Cell-type names, one per column.
        tasks: Task names, one per row (default ``task1..taskN``).
        baselines: Optional trivial baseline per task, for :func:`normalise`.
        alpha: Family-wise level of the tests.
        tie_tol: Normalised differences with ``|d| <= tie_tol`` count as ties (and as
            zero differences in the Wilcoxon tests); 0 means exact equality. Ranks
            always use exact equality (so the Friedman test matches scipy).

    Returns:
        The comparison (:class:`~cellsearch.search.report.suite_model.SuiteComparison`):
        the inputs, normalised scores and ranks (None where dropped), which tasks and cells
        were used, the Friedman test (None untested), the pairs (``reject``: Holm alone;
        ``separated``: with the Friedman gate; ``favours``: the side the signed ranks lean
        to, significant or not), the critical-difference data (cliques: :func:`cliques`)
        and the verdict. No NaN anywhere: missing is None.
    """
    oriented = _orient(scores, maximize)
    n_all, k_all = oriented.shape
    task_names = list(tasks) if tasks is not None else [f"task{i + 1}" for i in range(n_all)]
    if len(cells) != k_all or len(task_names) != n_all:
        raise ValueError("cells and tasks must name every column and row of scores")
    if len(set(cells)) != len(cells):
        raise ValueError("cell names must be unique")
    norm = normalise(scores, maximize, baselines)
    _, _, use_base = _reference(oriented, maximize, baselines)
    present = ~np.isnan(oriented)
    compared = np.asarray(present.any(axis=0), dtype=bool)  # (k_all,)
    complete = np.asarray(present[:, compared].all(axis=1), dtype=bool)  # (N_all,)
    used = complete & bool(compared.any())
    names = [c for c, keep in zip(cells, compared, strict=True) if keep]
    sub = np.ix_(used, compared)
    ranks = sps.rankdata(-oriented[sub], method="average", axis=1) if used.any() else None
    n, k = int(used.sum()), len(names)
    avg = ranks.mean(axis=0) if ranks is not None else np.full(k, np.nan)
    full_ranks = np.full((n_all, k_all), np.nan)
    if ranks is not None:
        full_ranks[sub] = ranks
    tested = k >= 2 and n >= minimum_tasks(alpha)
    fried: FriedmanTest | None = None
    pairs: list[RankPair] = []
    separated = np.zeros((k, k), dtype=bool)
    if tested and ranks is not None:
        fried = FriedmanTest.model_validate(friedman(ranks, alpha))
        pairs, separated = _post_hoc(norm[sub], avg, names, fried, alpha, tie_tol)
    reference: list[Literal["baseline", "worst"]] = ["baseline" if b else "worst" for b in use_base]
    result = SuiteComparison(
        alpha=alpha,
        tie_tol=tie_tol,
        tasks=task_names,
        cells=list(cells),
        maximize=[bool(m) for m in maximize],
        scores=_matrix(np.array(scores, dtype=np.float64)),
        normalised=_matrix(norm),
        reference=reference,
        ranks=_matrix(full_ranks),
        tasks_used=[t for t, u in zip(task_names, used, strict=True) if u],
        tasks_dropped=[t for t, u in zip(task_names, used, strict=True) if not u],
        cells_compared=names,
        cells_dropped=[c for c, keep in zip(cells, compared, strict=True) if not keep],
        n_tasks=n,
        average_ranks={name: _number(a) for name, a in zip(names, avg.tolist(), strict=True)},
        min_tasks=minimum_tasks(alpha),
        min_tasks_to_separate=minimum_tasks(alpha, max(1, k * (k - 1) // 2)),
        tested=tested,
        friedman=fried,
        pairs=pairs,
        cd=_cd_data(avg, names, separated, n, alpha),
        verdict="",
    )
    return result.model_copy(update={"verdict": _verdict(result)})
