"""The comparison report as a self-contained HTML page with Plotly plots.

:func:`render_report_html` takes the report made by
:func:`cellsearch.search.report.build_report`. Every string from the report is
HTML-escaped; figure data go into a ``<script type="application/json">``-safe
literal (``<``, ``>`` and ``&`` written as ``\\u`` escapes). With
``plotly_js="inline"`` the installed plotly package's ``plotly.min.js`` is
embedded, so the page needs no network.

The trial table and the parallel-coordinates plot are drawn in the browser
(``static/report_trials.js``) from the report's ``trials`` columns, which the page
carries: one request, about 100 bytes a trial, sortable and filterable without a
server round trip. While the study runs, the page reloads itself and keeps the table's
filter, sort and page in the address's fragment.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources
from typing import Any

from cellsearch.search.report.model import StudyReport
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.service.reports.figures import figures, metric_label
from cellsearch.service.reports.sections import (
    best_configurations,
    environment_table,
    esc,
    fmt,
    importance_table,
    kept_models_table,
    partial_banner,
    refresh_seconds,
    summary_table,
)

PAGE_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem} .meta{color:#555;margin-top:0}
.verdict{font-size:1.25rem;padding:.8rem 1rem;background:#eef5ff;border-left:6px solid #2b6cb0}
.warning{padding:.6rem 1rem;background:#fff4e5;border-left:6px solid #dd6b20;margin:.4rem 0}
.empty{padding:1rem;background:#f5f5f5;border-left:6px solid #888}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
.plot{width:100%;height:420px;margin:1rem 0}
.banner{padding:.6rem 1rem;background:#fdecea;border-left:6px solid #c53030;margin:.6rem 0;
font-weight:600}
.legend{font-size:.85rem;color:#444}
#best-configs th,#environment th{text-align:left;font-weight:500;background:#fafafa}
#environment td{text-align:left}
#trials th{cursor:pointer;user-select:none;background:#fafafa}
#trials td:nth-child(2),#trials td:nth-child(3){text-align:left}
#trials th[aria-sort=ascending]::after{content:" \\25B2"}
#trials th[aria-sort=descending]::after{content:" \\25BC"}
.pager button{margin:0 .4rem}
.scroll{overflow-x:auto;max-width:100%}
"""


INLINE_TRIALS = 200_000
"""Characters of trial table the page carries itself; a bigger table is fetched by the page
from the report's JSON (cached by the API), so that the page stays light."""


def _script_json(value: Any) -> str:
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_tag(plotly_js: str) -> str:
    if plotly_js == "inline":
        from plotly.offline import get_plotlyjs

        code = get_plotlyjs().replace("</script", "<\\/script")
        return f"<script>{code}</script>"
    return f'<script src="{esc(plotly_js)}" charset="utf-8"></script>'


def _pairs_table(report: StudyReport) -> str:
    comparison = report.comparison
    if comparison is None:
        return ""
    head = (
        f"<tr><th>A</th><th>B</th><th>P(best of {comparison.n} {comparison.unit} from A "
        "beats B)</th>"
        "<th>p-value</th><th>Holm-adjusted</th><th>difference</th></tr>"
    )
    rows = [
        f"<tr><td>{esc(p.a)}</td><td>{esc(p.b)}</td><td>{fmt(p.p_best_of_n, 3)}</td>"
        f"<td>{fmt(p.p_value, 3)}</td><td>{fmt(p.p_adjusted, 3)}</td>"
        f"<td>{esc(p.better + ' better') if p.better else 'not detected'}</td></tr>"
        for p in comparison.pairs
    ]
    test = esc(comparison.test)
    return f"<h2>Pairwise comparison</h2><p>{test}</p><table>{head}{''.join(rows)}</table>"


def _header(report: StudyReport, dashboard_url: str | None, note: str | None = None) -> str:
    study = report.study
    meta = (
        f"objective: {esc(metric_label(report))} ({esc(study.direction)}); "
        f"status {esc(study.status)}; {study.n_finished} of {study.n_trials} trials "
        f"finished; allocation {esc(study.allocation)}"
    )
    if study.trial_counts.running:
        meta += f"; {study.trial_counts.running} running"
    if study.baseline is not None:
        meta += (
            f"<br>baseline {fmt(study.baseline)}: "
            f"{esc(study.baseline_description or 'trivial predictor')}; a trial has learned "
            f"the task when it covers {100 * study.min_gain:.3g}% of the way from it to the "
            "best possible value"
        )
    elif study.baseline_description:
        meta += f"<br>baseline unknown: {esc(study.baseline_description)}"
    if dashboard_url:
        meta += (
            f"<br><a href='{esc(dashboard_url)}' id='dashboard-link'>open in optuna-dashboard</a>"
        )
    banner = partial_banner(report, note)
    # the banner says what the "Partial results" warning says, and more
    warnings = [w for w in report.warnings if not (banner and w.startswith("Partial results"))]
    warned = "".join(f"<div class='warning'>{esc(w)}</div>" for w in warnings)
    return (
        f"<h1>Cell-type comparison: {esc(study.study_name)}</h1><p class='meta'>{meta}</p>"
        f"{banner}<p class='verdict' id='verdict'>{esc(report.verdict)}</p>{warned}"
    )


def _trials_section(report: StudyReport) -> str:
    if report.trials is None or not report.trials.number:
        return ""
    options = "".join(
        f"<option value='{esc(c.cell_type)}'>{esc(c.cell_type)}</option>" for c in report.cells
    )
    return (
        "<h2>Trials</h2><p>Every trial of the study; the plot draws the completed ones. "
        "Click a column's name to sort by it.</p>"
        f"<p><label>cell type <select id='cell-filter'><option value=''>all</option>{options}"
        "</select></label> <span id='trial-count'></span></p>"
        "<h3>Parallel coordinates of the completed trials</h3>"
        "<div class='plot' id='plot-parcoords'></div><p class='legend' id='parcoords-note'></p>"
        "<div class='scroll'><table id='trials'><thead></thead><tbody></tbody></table></div>"
        "<p class='pager'><button id='prev'>previous</button><span id='page-info'></span>"
        "<button id='next'>next</button></p>"
    )


def _page_script(report: StudyReport, payload: list[dict[str, Any]], dashboard: str | None) -> str:
    table = None if report.trials is None else dict(report.trials)  # JSON-ready columns
    trials = _script_json(table)
    fetched = len(trials) > INLINE_TRIALS  # a big study's table comes with the report's JSON
    page = {
        "metric_label": metric_label(report),
        "direction": report.study.direction,
        "cells": [c.cell_type for c in report.cells],
        "dashboard": dashboard,
        "refresh": refresh_seconds(report),
        "trials_url": "report" if fetched else None,  # relative to .../report.html
    }
    trials = "null" if fetched else trials
    code = (
        resources.files("cellsearch.service.reports")
        .joinpath("static/report_trials.js")
        .read_text()
    )
    code = code.replace("</script", "<\\/script")
    return (
        f"<script>const FIGS = {_script_json(payload)};\n"
        "for (const f of FIGS) { Plotly.newPlot(f.id, f.data, f.layout, "
        "{responsive: true, displaylogo: false}); }\n"
        f"const PAGE = {_script_json(page)};\nconst TRIALS = {trials};\n{code}</script>"
    )


def _empty_text(report: StudyReport) -> str:
    """What the page says where no trial completed: nothing yet, or nothing ever."""
    study = report.study
    if study.n_finished and not study.partial:
        return (
            f"No trial completed: all {study.n_finished} finished trials were pruned or "
            "failed, so there are no scores to compare or plot (the table above says how "
            "each ended)."
        )
    return (
        "No completed trials yet: there are no scores to compare or plot. The page fills "
        "in as trials finish."
    )


def render_report_html(
    report: StudyReport,
    *,
    plotly_js: str = "inline",
    dashboard_url: str | None = None,
    note: str | None = None,
    models: Sequence[ArtifactEntry] = (),
) -> str:
    """Render a report as one self-contained HTML page.

    Args:
        report: The output of :func:`cellsearch.search.report.build_report`.
        plotly_js: ``"inline"`` to embed plotly.min.js from the installed plotly
            package; otherwise the URL of a plotly.js script.
        dashboard_url: The study's page in optuna-dashboard
            (``.../dashboard/studies/<id>``); each trial then links to it there.
        note: What holds the study up, for the banner (e.g. no live worker).
        models: The best kept model of each cell type that has one, linked for download
            (the report itself knows nothing of the artifact store).

    Returns:
        The page as a string.
    """
    figs = figures(report)
    plots = "".join(
        f"<h2>{esc(f['title'])}</h2><div class='plot' id='{esc(f['id'])}'></div>" for f in figs
    )
    if not any(cell.best for cell in report.cells):
        plots = f"<p class='empty' id='empty'>{esc(_empty_text(report))}</p>" + plots
    payload = [{"id": f["id"], "data": f["data"], "layout": f["layout"]} for f in figs]
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    title = esc(f"cellsearch report: {report.study.study_name}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{PAGE_CSS}</style>{_plotly_tag(plotly_js)}</head><body>"
        f"{_header(report, dashboard_url, note)}<h2>Per cell type</h2>{summary_table(report)}"
        f"{best_configurations(report, dashboard_url)}{kept_models_table(report, models)}"
        f"{_pairs_table(report)}"
        f"{importance_table(report)}{plots}"
        f"{_trials_section(report)}<h2>Notes</h2><ul>{notes}</ul>{environment_table(report)}"
        f"{_page_script(report, payload, dashboard_url)}</body></html>"
    )
