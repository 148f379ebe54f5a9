"""Results as pandas DataFrames (the optional extra ``cellsearch[pandas]``).

- :func:`trials_frame`: one row per trial, a column per recorded attribute and one per
  sampled parameter (``params_<name>``, as Optuna's ``trials_dataframe`` names them) and
  per cell option (``cell_options_<name>``).
- :func:`curves_frame`: the learning curves, long: one row per trial and epoch.
- :func:`cells_frame`, :func:`pairs_frame`, :func:`suite_scores_frame`: a report's tables.

pandas is imported when a frame is asked for; without it, an ImportError names the extra.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from cellsearch.client.records import Trial

if TYPE_CHECKING:
    import pandas as pd

    from cellsearch.search.report.model import StudyReport
    from cellsearch.search.report.suite_model import SuiteReport

_NESTED = ("params", "learning_curve", "cell_options")
_FIRST = ("number", "state", "value", "cell_type")


def pandas() -> Any:
    """The pandas module, or an ImportError that says how to install it."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "data frames need pandas: pip install 'cellsearch[pandas]' (or pandas itself)"
        ) from None
    return pd


def trials_frame(trials: Iterable[Trial]) -> pd.DataFrame:
    """One row per trial: number, state, value, cell type, every recorded attribute, then
    ``params_<name>`` per sampled parameter and ``cell_options_<name>`` per cell option."""
    pd = pandas()
    scalar = [name for name in Trial.model_fields if name not in _NESTED and name not in _FIRST]
    rows: list[dict[str, Any]] = []
    extra: dict[str, None] = {}  # parameter and option columns, in order of appearance
    for t in trials:
        row: dict[str, Any] = {name: getattr(t, name) for name in (*_FIRST, *scalar)}
        for key, value in t.params.items():
            row[f"params_{key}"] = value
        for key, value in (t.cell_options or {}).items():
            row[f"cell_options_{key}"] = value
        extra.update(dict.fromkeys(k for k in row if k.startswith(("params_", "cell_options_"))))
        rows.append(row)
    columns = [*_FIRST, *scalar, *sorted(extra, key=lambda k: not k.startswith("params_"))]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("started_at", "completed_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def curves_frame(trials: Iterable[Trial]) -> pd.DataFrame:
    """The learning curves, long: number, cell_type, state, epoch (0-based), value."""
    pd = pandas()
    rows = [
        (t.number, t.cell_type, t.state, epoch, value)
        for t in trials
        for epoch, value in sorted(t.learning_curve.items())
    ]
    columns = ["number", "cell_type", "state", "epoch", "value"]
    return pd.DataFrame(rows, columns=columns)


def cells_frame(report: StudyReport) -> pd.DataFrame:
    """One row per cell type (the index): counts, the best value and its interval, the
    median, the expected best at the per-cell budget, rates, and the best trial's cost."""
    pd = pandas()
    rows = []
    for cell in report.cells:
        best, at = cell.best, cell.expected_best_at_budget
        rows.append({
            "cell_type": cell.cell_type,
            "complete": cell.counts.complete,
            "pruned": cell.counts.pruned,
            "failed": cell.failures.diverged + cell.failures.error,
            "best": best.value if best else None,
            "ci_low": best.ci_low if best else None,
            "ci_high": best.ci_high if best else None,
            "median": cell.median,
            "expected_best_n": at.n if at else None,
            "expected_best": at.mean if at else None,
            "expected_best_sd": at.std if at else None,
            "extrapolated": at.extrapolated if at else None,
            "divergence_rate": cell.divergence_rate,
            "pruning_rate": cell.pruning_rate,
            "n_beat_baseline": cell.n_beat_baseline,
            "best_trial": best.trial_number if best else None,
            "param_count": best.param_count if best else None,
            "seconds_per_epoch": best.seconds_per_epoch if best else None,
            "test_metric": best.test_metric if best else None,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("cell_type") if rows else pd.DataFrame()


def pairs_frame(pairs: Sequence[Any]) -> pd.DataFrame:
    """One row per pair of cell types and its test (the report's ``comparison.pairs``)."""
    pd = pandas()
    return pd.DataFrame([p.model_dump() for p in pairs])


def suite_scores_frame(report: SuiteReport) -> pd.DataFrame:
    """One row per task and cell type: the score, its interval, its rank on the task."""
    pd = pandas()
    rows = [
        {"task": task, "cell_type": cell, **score.model_dump()}
        for task, scores in report.scores.items()
        for cell, score in scores.items()
        if score is not None
    ]
    return pd.DataFrame(rows)
