"""The study report's sections across cell types, typed: the comparison, the seed
re-evaluation, the allocation, the environment and the trial table (pydantic and the
standard library only)."""

from __future__ import annotations

from typing import Literal

from cellsearch.search.report.model_base import ParamValue, ReportModel


class PairTest(ReportModel):
    """One pair of cell types: completed (``n_a``, ``n_b``) and all (``draws_a``,
    ``draws_b``) draws, P(A's best of n beats B's) and P(one draw of A beats one of B)
    (None below two completed draws a side), the test's p-value, Holm-adjusted, whether
    it rejects and which side is ``better`` when it does."""

    a: str
    b: str
    n_a: int
    n_b: int
    draws_a: int
    draws_b: int
    p_best_of_n: float | None
    p_single: float | None
    p_value: float | None
    p_adjusted: float | None
    reject: bool
    better: str | None
    method: Literal["exact", "permutation", "asymptotic"] | None


class CellComparison(ReportModel):
    """Pairwise tests between cell types on their search draws (``n``: the best of how
    many); ``random_only`` when they rest on the random phase's draws alone."""

    n: int
    alpha: float
    test: str
    random_only: bool
    pairs: list[PairTest]

    @property
    def unit(self) -> str:
        """What ``n`` counts: trials, or the random phase's trials."""
        return "random trials" if self.random_only else "trials"


class SeedComparison(ReportModel):
    """Pairwise tests between the re-evaluated configurations' per-seed values."""

    n: int
    alpha: float
    test: str
    pairs: list[PairTest]


class SeedSummary(ReportModel):
    """One configuration over seeds: mean, sample standard deviation and a bootstrap
    interval of the mean (None with one seed)."""

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


class ReevaluatedConfiguration(ReportModel):
    """A configuration retrained with fresh seeds: the search trial it repeats (``of``),
    its search value, and its validation (``val``) and test values over seeds."""

    of: int
    params: dict[str, ParamValue] | None
    search_value: float | None
    seeds_finished: int
    failed: int
    val: SeedSummary | None
    test: SeedSummary | None


class ReevaluatedCell(ReportModel):
    """A cell type's re-evaluated configurations, best first, and the one selected."""

    configurations: list[ReevaluatedConfiguration]
    selected: int


class Reevaluation(ReportModel):
    """The seed re-evaluation (see :mod:`cellsearch.search.report.reevaluated`): the verdict
    rests on it once ``complete``; ``means`` are the selected configurations' means."""

    top_k: int
    seeds: int
    finished: int
    complete: bool
    cells: dict[str, ReevaluatedCell]
    comparison: SeedComparison | None
    means: dict[str, float]


class Allocation(ReportModel):
    """Which cell type each trial used: trial numbers, and completion ranks (1 = first)."""

    trial_number: dict[str, list[int]]
    completion_rank: dict[str, list[int]]


class BootstrapInfo(ReportModel):
    """The bootstrap's replicates and seed (``[study seed, "cell index"]``)."""

    replicates: int
    seed: tuple[int, str]


class Environment(ReportModel):
    """Versions, devices and seeds the trials and the report were made with."""

    torch_versions: list[str]
    cellsearch_versions: list[str]
    optuna_version: str
    report_cellsearch_version: str
    devices: dict[str, int]
    study_seed: int
    trial_seeds_recorded: int
    precisions: dict[str, int]
    bootstrap: BootstrapInfo


class TrialTable(ReportModel):
    """Every trial, column by column (see
    :func:`cellsearch.search.report.details.trial_table`); ``params`` holds a column per
    searched hyperparameter, ``log_scale`` names those sampled on a log scale."""

    number: list[int]
    cell_type: list[str | None]
    state: list[str]
    value: list[float | None]
    epochs: list[int | None]
    seconds: list[float | None]
    param_count: list[int | None]
    params: dict[str, list[ParamValue]]
    log_scale: list[str]
