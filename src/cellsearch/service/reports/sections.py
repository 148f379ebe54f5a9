"""HTML sections of the report page: tables, the partial-results banner, the legend.

Each function takes the report dict (:func:`cellsearch.search.report.build_report`) and
returns an HTML fragment; every string from the report is escaped here.
"""

from __future__ import annotations

import html
from typing import Any

from cellsearch.search.report.metric import quantity_label
from cellsearch.service.reports.figures import metric_label

REFRESH_SECONDS = 15  # how often the page of a running study reloads itself
_ENVIRONMENT_NAMES = {
    "torch_versions": "torch",
    "cellsearch_versions": "cellsearch (workers)",
    "optuna_version": "optuna",
    "report_cellsearch_version": "cellsearch (this report)",
    "devices": "devices (trials)",
    "study_seed": "study seed",
    "trial_seeds_recorded": "trials with a recorded seed",
    "precisions": "precision (trials)",
    "bootstrap": "bootstrap",
}


def esc(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    """A number to ``digits`` significant digits; a dash for None."""
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return esc(value)


def _rate(value: float | None) -> str:
    return "&mdash;" if value is None else f"{100 * value:.1f}%"


def _better(report: dict[str, Any]) -> str:
    return "highest" if report["study"]["direction"] == "maximize" else "lowest"


def refresh_seconds(report: dict[str, Any]) -> int:
    """How often the page reloads itself: while the study runs or is queued; else 0."""
    return REFRESH_SECONDS if report["study"]["status"] in ("running", "queued") else 0


def partial_banner(report: dict[str, Any]) -> str:
    """The banner of a study that has not completed: what state it is in, what to expect."""
    study = report["study"]
    if not study.get("partial"):
        return ""
    status = study["status"]
    done = f"{study['n_finished']} of {study['n_trials']} trials have finished"
    if status == "cancelled":
        text = f"Partial results: the study was cancelled; {done}. These numbers are final."
    elif refresh_seconds(report):
        text = (
            f"Partial results: the study is {status}; {done}. Numbers will change: this "
            f"page reloads itself every {refresh_seconds(report)} s."
        )
    else:
        text = f"Partial results: the study is {status}; {done}. Numbers will change."
    return f"<div class='banner' id='partial'>{esc(text)}</div>"


def summary_table(report: dict[str, Any]) -> str:
    """One row per cell type: counts, the best value and its interval, E[best of n]."""
    label = esc(metric_label(report))
    head = (
        "<tr><th>cell type</th><th>complete</th><th>pruned</th><th>failed</th>"
        f"<th>best {label}</th><th>95% CI of the best</th><th>median</th>"
        "<th>E[best of n] &plusmn; sd</th><th>beat the baseline</th>"
        "<th>diverged (% of outcomes)</th><th>pruned (% of outcomes)</th></tr>"
    )
    rows = []
    for cell in report["cells"]:
        best = cell.get("best") or {}
        at = cell.get("expected_best_at_budget") or {}
        ci = f"[{fmt(best['ci_low'])}, {fmt(best['ci_high'])}]" if best else "&mdash;"
        evp = "&mdash;"
        if at:
            evp = f"{fmt(at['mean'])} &plusmn; {fmt(at['std'], 2)} (n={at['n']})"
            evp += " extrapolated" if at.get("extrapolated") else ""
        counts = cell["counts"]
        failed = sum((cell.get("failures") or {}).get(k, 0) for k in ("diverged", "error"))
        beat = cell.get("n_beat_baseline")
        beat_text = "&mdash;" if beat is None else f"{beat} of {cell['n_completed']}"
        rows.append(
            f"<tr><td>{esc(cell['cell_type'])}</td><td>{counts['complete']}</td>"
            f"<td>{counts['pruned']}</td><td>{failed}</td><td>{fmt(best.get('value'))}</td>"
            f"<td>{ci}</td><td>{fmt(cell.get('median'))}</td><td>{evp}</td><td>{beat_text}</td>"
            f"<td>{_rate(cell['divergence_rate'])}</td><td>{_rate(cell['pruning_rate'])}</td></tr>"
        )
    return f"<table id='summary'>{head}{''.join(rows)}</table>{_legend(report)}"


def _legend(report: dict[str, Any]) -> str:
    """What each column and each interval of the summary is."""
    label = esc(metric_label(report))
    study = report["study"]
    replicates = (report.get("environment") or {}).get("bootstrap", {}).get("replicates")
    resamples = f"{replicates} resamples" if replicates else "resamples"
    items = [
        f"<b>best</b>: the {_better(report)} {label} among the cell type's completed trials.",
        f"<b>95% CI of the best</b>: a percentile bootstrap interval of that best value "
        f"({resamples} of the completed trials, each as many as were run): how far the best "
        "could move if the same number of trials were drawn again. It is not an interval of "
        "single trials' values.",
        f"<b>median</b>: the median {label} of the completed trials.",
        f"<b>E[best of n] &plusmn; sd</b>: the expected best {label} among n trials drawn "
        "from the completed ones (n: the study's trials per cell type; Dodge et al. 2019), "
        "and the standard deviation of that best: the spread of the best of n, not a "
        "confidence interval.",
        "<b>failed</b>: trials that diverged or raised an error; they count toward the "
        "budget. Trials interrupted by a pause or a cancel, or lost with a worker, are "
        "requeued and not counted.",
        "<b>% of outcomes</b>: shares of the trials that ended with a model outcome "
        "(complete, pruned, diverged or error).",
    ]
    if study.get("baseline") is not None:
        items.append(
            f"<b>beat the baseline</b>: completed trials whose {label} is better than the "
            f"baseline {fmt(study['baseline'])} ({esc(study.get('baseline_description') or '')})."
        )
    return "<ul class='legend' id='legend'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def best_configurations(report: dict[str, Any], dashboard_url: str | None = None) -> str:
    """The best trial of each cell type: its scores and every hyperparameter."""
    cells = [c for c in report["cells"] if c.get("best")]
    if not cells:
        return ""
    bests = [c["best"] for c in cells]
    test_names = {b.get("test_metric_name") for b in bests} - {None}
    test_label = ", ".join(quantity_label(n) for n in sorted(test_names)) or "test metric"
    rows: list[tuple[str, list[str]]] = [
        ("trial", [_trial_link(b["trial_number"], dashboard_url) for b in bests]),
        (esc(metric_label(report)), [fmt(b["value"]) for b in bests]),
        (esc(test_label) + " (at the best epoch)", [fmt(b.get("test_metric")) for b in bests]),
        ("parameters", [fmt(b.get("param_count")) for b in bests]),
        ("seconds per epoch", [fmt(b.get("seconds_per_epoch"), 3) for b in bests]),
    ]
    names: list[str] = []
    for best in bests:
        names += [n for n in best.get("hyperparameters") or best["params"] if n not in names]
    for name in names:
        if name != "cell_type":
            values = [(b.get("hyperparameters") or b["params"]).get(name) for b in bests]
            rows.append((esc(name), [fmt(v) for v in values]))
    head = "<tr><th></th>" + "".join(f"<th>{esc(c['cell_type'])}</th>" for c in cells) + "</tr>"
    body = "".join(
        f"<tr><th>{name}</th>{''.join(f'<td>{v}</td>' for v in values)}</tr>"
        for name, values in rows
    )
    return (
        "<h2>Best configuration per cell type</h2><p>The best completed trial of each cell "
        "type, with every hyperparameter (sampled, fixed by the spec, or derived). The test "
        "score is measured at the epoch with the best validation score and never steered "
        f"the search.</p><table id='best-configs'>{head}{body}</table>"
    )


def _trial_link(number: int, dashboard_url: str | None) -> str:
    if not dashboard_url:
        return f"#{number}"
    href = esc(f"{dashboard_url}/trials?numbers={number}")
    return f"<a href='{href}' title='open in optuna-dashboard'>#{number}</a>"


def _readable(value: Any) -> str:
    if isinstance(value, dict):
        if set(value) == {"replicates", "seed"}:
            seed = ", ".join(str(s) for s in value["seed"])
            return f"{value['replicates']} replicates, seeded by [{seed}]"
        return ", ".join(f"{k} ({v})" for k, v in value.items()) or "none recorded"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none recorded"
    return str(value)


def environment_table(report: dict[str, Any]) -> str:
    """The environment section as a two-column table of readable values."""
    rows = "".join(
        f"<tr><th>{esc(_ENVIRONMENT_NAMES.get(k, k.replace('_', ' ')))}</th>"
        f"<td>{esc(_readable(v))}</td></tr>"
        for k, v in (report.get("environment") or {}).items()
    )
    return f"<h2>Environment</h2><table id='environment'>{rows}</table>"
