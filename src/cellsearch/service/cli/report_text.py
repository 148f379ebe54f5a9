"""The comparison report as text: at most 80 columns, no cut cells, fine in a pipe.

It names the objective and the baseline, keeps counts and rates apart (a rate says what
it is a share of), and says what each interval is an interval of.
"""

from __future__ import annotations

from typing import Any

from cellsearch.search.report.compare import unit
from cellsearch.search.report.metric import quantity_label
from cellsearch.service.cli.text import echo_lines, num, table, wrap

_COUNT = [False, True, True, True]


def _objective(report: dict[str, Any]) -> str:
    study = report["study"]
    return str(study.get("metric_label") or study["metric"])


def _heading(report: dict[str, Any]) -> list[str]:
    study = report["study"]
    counts = study.get("trial_counts") or {}
    status = study["status"]
    lines = wrap(
        f"{study['study_name']}: {_objective(report)} ({study['direction']}), {status}, "
        f"{study['n_finished']} of {study['n_trials']} trials finished"
        + (f", {counts['running']} running" if counts.get("running") else "")
    )
    if study.get("baseline") is not None:
        lines += wrap(
            f"baseline {num(study['baseline'])}: {study.get('baseline_description') or ''}"
        )
    lines += ["", *wrap(report["verdict"])]
    for warning in report.get("warnings", []):
        lines += wrap(warning, indent="  ", first="warning: ")
    return lines


def _counts_table(report: dict[str, Any]) -> list[str]:
    rows = []
    for cell in report["cells"]:
        failed = sum((cell.get("failures") or {}).get(k, 0) for k in ("diverged", "error"))
        beat = cell.get("n_beat_baseline")
        rows.append([
            cell["cell_type"], str(cell["counts"]["complete"]), str(cell["counts"]["pruned"]),
            str(failed), num((cell.get("best") or {}).get("value")), num(cell.get("median")),
            "-" if beat is None else f"{beat} of {cell['n_completed']}",
        ])  # fmt: skip
    headers = ["cell", "complete", "pruned", "failed", "best", "median", "beat baseline"]
    return table(headers, rows, right=[*_COUNT, True, True, True])


def _interval_table(report: dict[str, Any]) -> list[str]:
    rows, n = [], None
    for cell in report["cells"]:
        best = cell.get("best") or {}
        at = cell.get("expected_best_at_budget") or {}
        n = at.get("n", n)
        ci = f"[{num(best['ci_low'])}, {num(best['ci_high'])}]" if best else "-"
        evp = f"{num(at['mean'])} +- {num(at['std'], 2)}" if at else "-"
        evp += "*" if at.get("extrapolated") else ""
        cost = [num(best.get("param_count")), num(best.get("seconds_per_epoch"), 3)]
        rows.append([cell["cell_type"], ci, evp, *cost])
    headers = ["cell", "95% CI of the best", f"E[best of {n or 'n'}] +- sd", "params", "s/epoch"]
    return table(headers, rows, right=[False, True, True, True, True])


def _legend(report: dict[str, Any]) -> list[str]:
    objective = _objective(report)
    better = "highest" if report["study"]["direction"] == "maximize" else "lowest"
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
    if report["study"].get("baseline") is not None:
        text.append(f"beat baseline: completed trials with a better {objective} than it.")
    lines: list[str] = []
    for item in text:
        lines += wrap(item, indent="  ")
    return lines


def _pairs(report: dict[str, Any]) -> list[str]:
    comparison = report.get("comparison")
    if not comparison:
        return []
    rows = [
        [p["a"], p["b"], num(p["p_best_of_n"], 3), num(p["p_adjusted"], 3),
         f"{p['better']} better" if p["better"] else "not detected"]
        for p in comparison["pairs"]
    ]  # fmt: skip
    n = comparison["n"]
    what = f"{n} {unit(comparison)}" if comparison.get("random_only") else n
    headers = ["A", "B", f"P(A's best of {what} wins)", "p (Holm)", "difference"]
    return ["", *wrap(f"Pairwise: {comparison['test']}"), *table(headers, rows,
            right=[False, False, True, True, False])]  # fmt: skip


def _best_configs(report: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for cell in report["cells"]:
        best = cell.get("best")
        if not best:
            continue
        params = best.get("hyperparameters") or best["params"]
        shown = ", ".join(f"{k}={num(v)}" for k, v in params.items() if k != "cell_type")
        test = ""
        if best.get("test_metric") is not None:
            test = f"; {quantity_label(best.get('test_metric_name'))} {num(best['test_metric'])}"
        lines += wrap(
            f"{cell['cell_type']}: trial {best['trial_number']}, {_objective(report)} "
            f"{num(best['value'])}{test}; {shown}",
            indent="    ",
            first="  ",
        )
    return ["", "Best configuration per cell type:", *lines] if lines else []


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as lines of at most 80 columns."""
    objective = _objective(report)
    lines = _heading(report)
    lines += ["", *wrap(f"Per cell type ({objective}):"), *_counts_table(report), ""]
    lines += _interval_table(report)
    lines += _legend(report)
    lines += _best_configs(report)
    lines += _pairs(report)
    return lines


def print_report(report: dict[str, Any]) -> None:
    """Print the report (see :func:`report_lines`)."""
    echo_lines(report_lines(report))
