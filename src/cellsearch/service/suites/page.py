"""The cross-task report of a suite as one self-contained HTML page (no script).

:func:`render_suite_html` takes the report made by
:func:`cellsearch.search.report.suite.build_suite_report`. The critical-difference
diagram is inline SVG (:mod:`cellsearch.search.report.cd_diagram`); every string from
the report is HTML-escaped, with the helpers and style of the study page
(:mod:`cellsearch.service.reports.page`).
"""

from __future__ import annotations

from cellsearch.search.report.cd_diagram import cd_diagram_svg
from cellsearch.search.report.formatting import percent
from cellsearch.search.report.suite_model import (
    RankPair,
    SuiteComparison,
    SuiteReport,
    TaskScore,
)
from cellsearch.service.reports.page import PAGE_CSS
from cellsearch.service.reports.sections import esc, fmt

_SUITE_CSS = """
td.best{font-weight:bold;background:#f0fff4} td.out{color:#888}
#tasks td,#tasks th{text-align:left} #tasks td:nth-child(2){white-space:nowrap}
.sub{display:block;color:#666;font-size:.8rem}
#cd svg{max-width:100%;height:auto}
"""


def _header(report: SuiteReport) -> str:
    suite = report.suite
    meta = (
        f"{suite.n_included} of {suite.n_tasks} tasks counted; cell types "
        f"{esc(', '.join(suite.cell_types))}"
    )
    if suite.partial:
        meta += " &mdash; <strong>PARTIAL RESULTS</strong>"
    about = f"<p>{esc(suite.description)}</p>" if suite.description else ""
    warnings = "".join(f"<div class='warning'>{esc(w)}</div>" for w in report.warnings)
    return (
        f"<h1>Cell types across tasks: {esc(suite.name)}</h1><p class='meta'>{meta}</p>"
        f"{about}<p class='verdict' id='verdict'>{esc(report.verdict)}</p>{warnings}"
    )


def _tasks_table(report: SuiteReport, study_url: str | None) -> str:
    rows = []
    for t in report.tasks:
        study = esc(t.study)
        if study_url and t.status != "missing":
            study = f"<a href='{esc(study_url.format(name=t.study))}'>{study}</a>"
        name = t.metric_label or t.metric
        metric = f"{esc(name)} ({esc(t.direction)})" if name else "&mdash;"
        counted = "yes" if t.included else f"no: {esc(t.reason)}"
        best = "&mdash;" if t.best is None else f"{fmt(t.best)} ({esc(t.best_cell)})"
        learned = {True: "yes", False: "no", None: "&mdash;"}[t.learned]
        rows.append(
            f"<tr><td>{esc(t.task)}</td><td>{study}</td><td>{esc(t.kind)}</td>"
            f"<td>{esc(t.status)}</td><td>{t.n_finished}/{t.n_trials}</td>"
            f"<td>{metric}</td><td>{fmt(t.baseline)}</td><td>{best}</td><td>{learned}</td>"
            f"<td>{counted}</td></tr>"
        )
    head = (
        "<tr><th>task</th><th>study</th><th>kind</th><th>status</th><th>trials</th>"
        "<th>metric</th><th>baseline</th><th>best (cell type)</th><th>learned</th>"
        "<th>counted</th></tr>"
    )
    return f"<h2>Tasks</h2><table id='tasks'>{head}{''.join(rows)}</table>"


def _unlearned_table(report: SuiteReport) -> str:
    """The finished tasks no cell type learned: baseline and each cell type's best."""
    if not report.unlearned:
        return ""
    cells = report.suite.cell_types
    head = (
        "<tr><th>task</th><th>metric</th><th>baseline</th>"
        + "".join(f"<th>{esc(c)}</th>" for c in cells)
        + "<th>best share of the way</th></tr>"
    )
    rows = []
    for u in report.unlearned:
        gain = percent(u.best_gain, html=True)
        rows.append(
            f"<tr><td>{esc(u.task)}</td><td>{esc(u.metric_label or '')}</td>"
            f"<td>{fmt(u.baseline)}</td>"
            + "".join(f"<td>{fmt(u.bests.get(c))}</td>" for c in cells)
            + f"<td>{gain}</td></tr>"
        )
    first = report.unlearned[0]
    where = (
        "They are ranked with the others all the same (comparison.rank_unlearned)."
        if first.ranked
        else "They are left out of the ranks, the tests and the critical-difference "
        "diagram, which they would fill with noise (comparison.rank_unlearned: true keeps "
        "them)."
    )
    return (
        "<h2>Tasks no cell type learned</h2><p>No completed trial of any cell type covered "
        f"{100 * first.min_gain:.3g}% of the way from the task's trivial baseline to the "
        f"best possible value. {where}</p>"
        f"<table id='unlearned'>{head}{''.join(rows)}</table>"
    )


def _score_cell(score: TaskScore | None, used: bool) -> str:
    if score is None:
        return "<td class='out'>no score</td>"
    interval = ""
    if score.low is not None and score.high is not None:
        interval = f" [{fmt(score.low)}, {fmt(score.high)}]"
    rank = score.rank
    best = used and rank is not None and rank <= 1.0
    sub = f"normalised {fmt(score.normalised, 3)}"
    sub += f", rank {fmt(rank, 3)}" if rank is not None else ", not ranked"
    css = " class='best'" if best else ""
    return f"<td{css}>{fmt(score.value)}{interval}<span class='sub'>{sub}</span></td>"


def _scores_table(report: SuiteReport) -> str:
    cells = report.suite.cell_types
    used = set(report.comparison.tasks_used if report.comparison is not None else [])
    head = "<tr><th>task</th>" + "".join(f"<th>{esc(c)}</th>" for c in cells) + "</tr>"
    rows = [
        f"<tr><td>{esc(task)}</td>"
        + "".join(_score_cell(scores.get(c), task in used) for c in cells)
        + "</tr>"
        for task, scores in report.scores.items()
    ]
    if not rows:
        return "<p class='empty' id='scores-empty'>No finished study yet: no scores.</p>"
    return (
        "<h2>Scores per task</h2><p>Each cell: the score in the task's units with its 95% "
        "interval; below, the normalised score (1 = best cell type) and the rank on the "
        f"task.</p><table id='scores'>{head}{''.join(rows)}</table>"
    )


def _ranks_table(comparison: SuiteComparison) -> str:
    cd = comparison.cd
    rows = "".join(
        f"<tr><td>{esc(c)}</td><td>{fmt(r, 3)}</td></tr>"
        for c, r in zip(cd.order, cd.average_ranks, strict=True)
    )
    return (
        f"<h2>Average ranks over {comparison.n_tasks} tasks</h2>"
        f"<table id='ranks'><tr><th>cell type</th><th>average rank</th></tr>{rows}</table>"
    )


def _tests(comparison: SuiteComparison) -> str:
    fried = comparison.friedman
    if fried is None:
        text = (
            f"Not tested: {comparison.n_tasks} tasks with a score for every cell type; "
            f"the tests need at least {comparison.min_tasks}."
        )
    else:
        iman = fried.iman_davenport
        text = (
            f"Friedman &chi;&sup2; = {fmt(fried.statistic)} (df {fried.df}), "
            f"p = {fmt(fried.p_value, 3)}; Iman-Davenport F = {fmt(iman.statistic)}, "
            f"p = {fmt(iman.p_value, 3)}; Kendall's W = {fmt(fried.kendall_w, 3)}."
        )
    return f"<h2>Tests</h2><p id='friedman'>{text}</p>"


def _pair_result(test: RankPair) -> str:
    """One pair's outcome in words (Holm alone can reject while the Friedman gate holds)."""
    if test.separated:
        return f"{esc(test.better)} better"
    if test.reject:
        return "not separated (Holm rejects, but the Friedman test does not)"
    return "not separated"


def _pairs_table(report: SuiteReport) -> str:
    pairs = report.comparison.pairs if report.comparison is not None else []
    tests = {(p.a, p.b): p for p in pairs}
    head = (
        "<tr><th>A</th><th>B</th><th>A wins / ties / losses</th><th>Wilcoxon p</th>"
        "<th>Holm-adjusted</th><th>result</th></tr>"
    )
    rows = []
    for w in report.win_tie_loss:
        test = tests.get((w.a, w.b))
        if test is None:
            p = adj = "&mdash;"
            result = "not tested"
        else:
            p, adj = fmt(test.p_value, 3), fmt(test.p_adjusted, 3)
            result = _pair_result(test)
        rows.append(
            f"<tr><td>{esc(w.a)}</td><td>{esc(w.b)}</td>"
            f"<td>{w.wins} / {w.ties} / {w.losses}</td><td>{p}</td><td>{adj}</td>"
            f"<td>{result}</td></tr>"
        )
    if not rows:
        return ""
    return f"<h2>Pairs of cell types</h2><table id='pairs'>{head}{''.join(rows)}</table>"


def render_suite_html(report: SuiteReport, *, study_url: str | None = None) -> str:
    """Render a suite report as one HTML page.

    Args:
        report: The output of :func:`cellsearch.search.report.suite.build_suite_report`.
        study_url: Link to each study's page, with ``{name}`` for the study's name.

    Returns:
        The page as a string.
    """
    comparison = report.comparison
    body = [
        _header(report),
        _tasks_table(report, study_url),
        _unlearned_table(report),
        _scores_table(report),
    ]
    if comparison is not None and comparison.cells_compared:
        svg = cd_diagram_svg(comparison)
        body += [
            _ranks_table(comparison),
            f"<h2>Critical-difference diagram</h2><div id='cd'>{svg}</div>",
            _tests(comparison),
        ]
    body.append(_pairs_table(report))
    notes = "".join(f"<li>{esc(n)}</li>" for n in report.notes)
    body.append(f"<h2>Notes</h2><ul id='notes'>{notes}</ul>")
    title = esc(f"cellsearch suite: {report.suite.name}")
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{PAGE_CSS}{_SUITE_CSS}</style></head><body>"
        f"{''.join(body)}</body></html>"
    )
