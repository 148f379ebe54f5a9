"""The comparison report as text: at most 80 columns, no cut cells, fine in a pipe.

It names the objective and the baseline, keeps counts and rates apart (a rate says what
it is a share of), and says what each interval is an interval of.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cellsearch.search.report.metric import quantity_label
from cellsearch.search.report.model import StudyReport
from cellsearch.service.cli.text import echo_lines, num, table, wrap

_COUNT = [False, True, True, True]


def _objective(report: StudyReport) -> str:
    return report.study.metric_label or report.study.metric


def _heading(report: StudyReport) -> list[str]:
    study = report.study
    running = study.trial_counts.running
    lines = wrap(
        f"{study.study_name}: {_objective(report)} ({study.direction}), {study.status}, "
        f"{study.n_finished} of {study.n_trials} trials finished"
        + (f", {running} running" if running else "")
    )
    if study.baseline is not None:
        lines += wrap(f"baseline {num(study.baseline)}: {study.baseline_description or ''}")
    lines += ["", *wrap(report.verdict)]
    for warning in report.warnings:
        lines += wrap(warning, indent="  ", first="warning: ")
    return lines


def _counts_table(report: StudyReport) -> list[str]:
    rows = []
    for cell in report.cells:
        failed = cell.failures.diverged + cell.failures.error
        beat = cell.n_beat_baseline
        rows.append([
            cell.cell_type, str(cell.counts.complete), str(cell.counts.pruned), str(failed),
            num(cell.best.value if cell.best else None), num(cell.median),
            "-" if beat is None else f"{beat} of {cell.n_completed}",
        ])  # fmt: skip
    headers = ["cell", "complete", "pruned", "failed", "best", "median", "beat baseline"]
    return table(headers, rows, right=[*_COUNT, True, True, True])


def _interval_table(report: StudyReport) -> list[str]:
    rows: list[list[str]] = []
    n = None
    for cell in report.cells:
        best, at = cell.best, cell.expected_best_at_budget
        n = at.n if at else n
        ci = f"[{num(best.ci_low)}, {num(best.ci_high)}]" if best else "-"
        evp = f"{num(at.mean)} +- {num(at.std, 2)}" if at else "-"
        evp += "*" if at and at.extrapolated else ""
        cost = [num(best.param_count), num(best.seconds_per_epoch, 3)] if best else ["-", "-"]
        rows.append([cell.cell_type, ci, evp, *cost])
    headers = ["cell", "95% CI of the best", f"E[best of {n or 'n'}] +- sd", "params", "s/epoch"]
    return table(headers, rows, right=[False, True, True, True, True])


def _legend(report: StudyReport) -> list[str]:
    objective = _objective(report)
    better = "highest" if report.study.direction == "maximize" else "lowest"
    text = [
        f"best: the {better} {objective} of the cell's completed trials; median: theirs.",
        "failed: diverged or raised an error (counted toward the budget); trials interrupted "
        "by a pause or a cancel are requeued and not counted.",
        "95% CI of the best: a bootstrap interval of the best value (resampling the completed "
        "trials), not of single trials' values.",
        "E[best of n] +- sd: the expected best of n trials drawn from the completed ones, and "
        "the spread of that best (not a confidence interval); * extrapolated past the trials "
        "seen. params, s/epoch: of the best trial.",
    ]
    if report.study.baseline is not None:
        text.append(f"beat baseline: completed trials with a better {objective} than it.")
    lines: list[str] = []
    for item in text:
        lines += wrap(item, indent="  ")
    return lines


def _pairs(report: StudyReport) -> list[str]:
    comparison = report.comparison
    if comparison is None:
        return []
    rows = [
        [p.a, p.b, num(p.p_best_of_n, 3), num(p.p_adjusted, 3),
         f"{p.better} better" if p.better else "not detected"]
        for p in comparison.pairs
    ]  # fmt: skip
    n = comparison.n
    what = f"{n} {comparison.unit}" if comparison.random_only else n
    headers = ["A", "B", f"P(A's best of {what} wins)", "p (Holm)", "difference"]
    return ["", *wrap(f"Pairwise: {comparison.test}"), *table(headers, rows,
            right=[False, False, True, True, False])]  # fmt: skip


def _best_configs(report: StudyReport) -> list[str]:
    lines: list[str] = []
    for cell in report.cells:
        best = cell.best
        if best is None:
            continue
        params = best.hyperparameters or best.params
        shown = ", ".join(f"{k}={num(v)}" for k, v in params.items() if k != "cell_type")
        test = ""
        if best.test_metric is not None:
            test = f"; {quantity_label(best.test_metric_name)} {num(best.test_metric)}"
        lines += wrap(
            f"{cell.cell_type}: trial {best.trial_number}, {_objective(report)} "
            f"{num(best.value)}{test}; {shown}",
            indent="    ",
            first="  ",
        )
    return ["", "Best configuration per cell type:", *lines] if lines else []


def report_lines(report: StudyReport) -> list[str]:
    """The report as lines of at most 80 columns."""
    objective = _objective(report)
    lines = _heading(report)
    lines += ["", *wrap(f"Per cell type ({objective}):"), *_counts_table(report), ""]
    lines += _interval_table(report)
    lines += _legend(report)
    lines += _best_configs(report)
    lines += _pairs(report)
    return lines


def print_report(data: Mapping[str, Any]) -> None:
    """Print the report the API sent as JSON (see :func:`report_lines`)."""
    echo_lines(report_lines(StudyReport.model_validate(data)))
