"""The comparison report as a self-contained HTML page with Plotly plots.

:func:`render_report_html` takes the dict made by
:func:`cellsearch.search.report.build_report`. Every string from the report is
HTML-escaped; figure data go into a ``<script type="application/json">``-safe
literal (``<``, ``>`` and ``&`` written as ``\\u`` escapes). With
``plotly_js="inline"`` the installed plotly package's ``plotly.min.js`` is
embedded, so the page needs no network.
"""

from __future__ import annotations

import html
import json
from typing import Any

from cellsearch.service.report_figures import figures

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{margin-bottom:.2rem} .meta{color:#555;margin-top:0}
.verdict{font-size:1.25rem;padding:.8rem 1rem;background:#eef5ff;border-left:6px solid #2b6cb0}
.warning{padding:.6rem 1rem;background:#fff4e5;border-left:6px solid #dd6b20;margin:.4rem 0}
.empty{padding:1rem;background:#f5f5f5;border-left:6px solid #888}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th:first-child,td:first-child{text-align:left}
.plot{width:100%;height:420px;margin:1rem 0}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "&mdash;"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return _esc(value)


def _rate(value: float | None) -> str:
    return "&mdash;" if value is None else f"{100 * value:.1f}%"


def _script_json(value: Any) -> str:
    text = json.dumps(value, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plotly_tag(plotly_js: str) -> str:
    if plotly_js == "inline":
        from plotly.offline import get_plotlyjs

        code = get_plotlyjs().replace("</script", "<\\/script")
        return f"<script>{code}</script>"
    return f'<script src="{_esc(plotly_js)}" charset="utf-8"></script>'


def _summary_table(report: dict[str, Any]) -> str:
    head = (
        "<tr><th>cell type</th><th>complete</th><th>pruned</th><th>failed</th>"
        "<th>best</th><th>95% CI</th><th>median</th><th>E[best of n]</th>"
        "<th>divergence</th><th>pruning</th><th>params (best)</th><th>s/epoch (best)</th></tr>"
    )
    rows = []
    for cell in report["cells"]:
        best = cell.get("best") or {}
        at = cell.get("expected_best_at_budget") or {}
        ci = f"[{_fmt(best['ci_low'])}, {_fmt(best['ci_high'])}]" if best else "&mdash;"
        evp = f"{_fmt(at['mean'])} &plusmn; {_fmt(at['std'], 2)} (n={at['n']})" if at else "&mdash;"
        counts = cell["counts"]
        rows.append(
            f"<tr><td>{_esc(cell['cell_type'])}</td><td>{counts['complete']}</td>"
            f"<td>{counts['pruned']}</td><td>{counts['fail']}</td><td>{_fmt(best.get('value'))}</td>"
            f"<td>{ci}</td><td>{_fmt(cell.get('median'))}</td><td>{evp}</td>"
            f"<td>{_rate(cell['divergence_rate'])}</td><td>{_rate(cell['pruning_rate'])}</td>"
            f"<td>{_fmt(best.get('param_count'))}</td><td>{_fmt(best.get('seconds_per_epoch'))}</td>"
            "</tr>"
        )
    return f"<table id='summary'>{head}{''.join(rows)}</table>"


def _pairs_table(report: dict[str, Any]) -> str:
    comparison = report.get("comparison")
    if not comparison:
        return ""
    head = (
        f"<tr><th>A</th><th>B</th><th>P(best of {comparison['n']} from A beats B)</th>"
        "<th>p-value</th><th>Holm-adjusted</th><th>difference</th></tr>"
    )
    rows = [
        f"<tr><td>{_esc(p['a'])}</td><td>{_esc(p['b'])}</td><td>{_fmt(p['p_best_of_n'], 3)}</td>"
        f"<td>{_fmt(p['p_value'], 3)}</td><td>{_fmt(p['p_adjusted'], 3)}</td>"
        f"<td>{_esc(p['better'] + ' better') if p['better'] else 'not detected'}</td></tr>"
        for p in comparison["pairs"]
    ]
    test = _esc(comparison["test"])
    return f"<h2>Pairwise comparison</h2><p>{test}</p><table>{head}{''.join(rows)}</table>"


def _environment(report: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><td>{_esc(k)}</td><td>{_esc(json.dumps(v))}</td></tr>"
        for k, v in report.get("environment", {}).items()
    )
    return f"<h2>Environment</h2><table id='environment'>{rows}</table>"


def _header(report: dict[str, Any]) -> str:
    study = report["study"]
    meta = (
        f"{_esc(study['metric'])} ({_esc(study['direction'])}); status {_esc(study['status'])}; "
        f"{study['n_finished']} of {study['n_trials']} trials finished; "
        f"allocation {_esc(study['allocation'])}"
    )
    if study.get("partial"):
        meta += " &mdash; <strong>PARTIAL RESULTS</strong>"
    warnings = "".join(f"<div class='warning'>{_esc(w)}</div>" for w in report["warnings"])
    return (
        f"<h1>Cell-type comparison: {_esc(study['study_name'])}</h1><p class='meta'>{meta}</p>"
        f"<p class='verdict' id='verdict'>{_esc(report['verdict'])}</p>{warnings}"
    )


def render_report_html(report: dict[str, Any], *, plotly_js: str = "inline") -> str:
    """Render a report dict as one self-contained HTML page.

    Args:
        report: The output of :func:`cellsearch.search.report.build_report`.
        plotly_js: ``"inline"`` to embed plotly.min.js from the installed plotly
            package; otherwise the URL of a plotly.js script.

    Returns:
        The page as a string.
    """
    figs = figures(report)
    plots = "".join(
        f"<h2>{_esc(f['title'])}</h2><div class='plot' id='{_esc(f['id'])}'></div>" for f in figs
    )
    if not any(cell.get("best") for cell in report["cells"]):
        plots = (
            "<p class='empty' id='empty'>No completed trials yet: there are no scores to "
            "compare or plot. The page fills in as trials finish.</p>" + plots
        )
    payload = [{"id": f["id"], "data": f["data"], "layout": f["layout"]} for f in figs]
    notes = "".join(f"<li>{_esc(n)}</li>" for n in report["notes"])
    script = (
        f"<script>const FIGS = {_script_json(payload)};\n"
        "for (const f of FIGS) { Plotly.newPlot(f.id, f.data, f.layout, "
        "{responsive: true, displaylogo: false}); }</script>"
    )
    title = _esc(f"cellsearch report: {report['study']['study_name']}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{_CSS}</style>{_plotly_tag(plotly_js)}</head><body>"
        f"{_header(report)}<h2>Per cell type</h2>{_summary_table(report)}{_pairs_table(report)}"
        f"{plots}<h2>Notes</h2><ul>{notes}</ul>{_environment(report)}{script}</body></html>"
    )
