"""The study report's importance section, typed (pydantic and the standard library only;
see :mod:`cellsearch.search.report.importance` for how it is made)."""

from __future__ import annotations

from cellsearch.search.report.model_base import ReportModel


class ParamImportance(ReportModel):
    """One hyperparameter: its ``share`` of the importance (shares sum to 1) and its
    ``effect`` (the share of the variance of the objective's ranks its main effect
    explains, adjusted for its groups), each with a bootstrap interval over trials (None
    below two trials' worth); ``null_effect`` is what permuted objective values give at the
    section's level (its quantile ``1 - level``), ``p_value`` the permutation test's and
    ``p_adjusted`` Holm's over the parameters; ``important`` when Holm rejects."""

    name: str
    share: float
    share_low: float | None
    share_high: float | None
    effect: float
    effect_low: float | None
    effect_high: float | None
    null_effect: float
    p_value: float
    p_adjusted: float
    important: bool


class Importances(ReportModel):
    """Hyperparameter importance among ``n_trials`` completed trials (a seeded subsample
    when ``subsampled``): ``importances`` are the shares, largest first, and ``params``
    the same parameters in the same order with their intervals and tests; ``important``
    names those the test calls important; ``can_tell`` is False below the section's
    ``min_trials_to_tell``; ``verdict`` says it in one sentence."""

    importances: dict[str, float]
    params: list[ParamImportance]
    n_trials: int
    subsampled: bool
    important: list[str]
    can_tell: bool
    verdict: str


class CellTypeImportance(ReportModel):
    """The cell type's share of the importance with its interval, its rank among ``of``
    parameters, and whether the test calls it important."""

    share: float
    share_low: float | None
    share_high: float | None
    rank: int
    of: int
    important: bool


class ImportanceSection(ReportModel):
    """Hyperparameter importance over the whole study (the cell type against the rest) and
    within each cell type; None where too few trials completed. ``level`` is the test's
    family-wise level, ``bootstrap`` and ``permutations`` its replicates, and
    ``min_trials_to_tell`` the completed trials from which the test finds a parameter that
    decides the objective in 80% of simulated studies (``benchmarks/importance.py``)."""

    method: str
    level: float
    bootstrap: int
    permutations: int
    min_trials_to_tell: int
    overall: Importances | None
    cell_type: CellTypeImportance | None
    per_cell: dict[str, Importances | None]
