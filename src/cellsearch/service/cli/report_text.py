"""The comparison report as text: at most 80 columns, no cut cells, fine in a pipe.

It names the objective and the baseline, keeps counts and rates apart (a rate says what
it is a share of), and says what each interval is an interval of. Given the study's kept
models (``GET /studies/{name}/models``), it ends with the command that downloads each
cell type's best one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cellsearch.client.models import KeptModel
from cellsearch.search.report.formatting import percent
from cellsearch.search.report.metric import quantity_label
from cellsearch.search.report.model import CellSummary, StudyReport
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
        lines += wrap(
            f"baseline {num(study.baseline)}: {study.baseline_description or ''}; learned: "
            f"{100 * study.min_gain:.3g}% of the way from it to the best possible value"
        )
    elif study.baseline_description:
        lines += wrap(f"baseline unknown: {study.baseline_description}")
    lines += ["", *wrap(report.verdict)]
    for warning in report.warnings:
        lines += wrap(warning, indent="  ", first="warning: ")
    return lines


def _counts_table(report: StudyReport) -> list[str]:
    rows = []
    for cell in report.cells:
        failed = cell.failures.diverged + cell.failures.error
        rows.append([
            cell.cell_type, str(cell.counts.complete), str(cell.counts.pruned), str(failed),
            num(cell.best.value if cell.best else None), num(cell.median), _learned(cell),
        ])  # fmt: skip
    headers = ["cell", "complete", "pruned", "failed", "best", "median", "learned"]
    return table(headers, rows, right=[*_COUNT, True, True, False])


def _learned(cell: CellSummary) -> str:
    """``yes 6/8 99.8%``: learned or not, trials that did of those completed, best gain."""
    if cell.learned is None or cell.n_beat_baseline is None:
        return "-"
    gain = "" if cell.best_gain is None else f" {percent(cell.best_gain)}"
    return f"{'yes' if cell.learned else 'no'} {cell.n_beat_baseline}/{cell.n_completed}{gain}"


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
    study = report.study
    if study.baseline is not None:
        text.append(
            f"learned: whether a completed trial learned the task (its {objective} covers "
            f"{100 * study.min_gain:.3g}% of the way from the baseline to the best possible "
            "value), how many of the completed ones did, and the best one's share."
        )
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


def _importance(report: StudyReport) -> list[str]:
    """Which hyperparameters matter: the verdict and, per parameter, the share with its
    interval, the effect against what noise gives, and the test."""
    section = report.importance
    overall = section.overall if section is not None else None
    if section is None or overall is None:
        return []
    rows = [
        [p.name, f"{num(p.share, 2)} [{num(p.share_low, 2)}, {num(p.share_high, 2)}]",
         num(p.effect, 2), num(p.null_effect, 2), num(p.p_adjusted, 2),
         "yes" if p.important else "no"]
        for p in overall.params
    ]  # fmt: skip
    headers = ["parameter", "share [95%]", "effect", "noise", "p (Holm)", "important"]
    lines = ["", *wrap(f"Which hyperparameters matter: {overall.verdict}")]
    lines += table(headers, rows, right=[False, True, True, True, True, False])
    lines += wrap(
        "effect: share of the variance of the objective's ranks a parameter explains; "
        f"noise: what {section.permutations} permutations of the values give "
        f"({100 * (1 - section.level):g}th percentile).",
        indent="  ",
    )
    return lines


def best_kept(report: StudyReport, models: Sequence[KeptModel]) -> list[KeptModel]:
    """The model the API serves as each cell type's best (``GET .../models/{cell}``): of
    its kept search trials, the best value; in the report's order of cell types."""
    sign = -1.0 if report.study.direction == "maximize" else 1.0
    ranked = sorted(
        (m for m in models if m.cell_type and not m.reevaluation and m.value is not None),
        key=lambda m: (sign * (m.value or 0.0), m.trial_number),
    )
    best: dict[str, KeptModel] = {}
    for model in ranked:
        best.setdefault(model.cell_type or "", model)
    return [best[c.cell_type] for c in report.cells if c.cell_type in best]


def _kept_models(report: StudyReport, models: Sequence[KeptModel]) -> list[str]:
    """Each cell type's best kept model and the command that downloads it (a command is
    never cut, even past 80 columns); nothing where no model is kept."""
    name = report.study.study_name
    lines: list[str] = []
    for model in best_kept(report, models):
        lines += wrap(
            f"{model.cell_type}: trial {model.trial_number}, {_objective(report)} "
            f"{num(model.value)}",
            indent="    ",
            first="  ",
        )
        lines.append(f"    cellsearch model download {name} --cell {model.cell_type}")
    return ["", "Kept models (the best of each cell type):", *lines] if lines else []


def report_lines(report: StudyReport, models: Sequence[KeptModel] = ()) -> list[str]:
    """The report as lines of at most 80 columns; with the study's kept ``models``, the
    download command of each cell type's best."""
    objective = _objective(report)
    lines = _heading(report)
    lines += ["", *wrap(f"Per cell type ({objective}):"), *_counts_table(report), ""]
    lines += _interval_table(report)
    lines += _legend(report)
    lines += _best_configs(report)
    lines += _pairs(report)
    lines += _importance(report)
    lines += _kept_models(report, models)
    return lines


def print_report(data: Mapping[str, Any]) -> None:
    """Print the report the API sent as JSON (see :func:`report_lines`)."""
    echo_lines(report_lines(StudyReport.model_validate(data)))
