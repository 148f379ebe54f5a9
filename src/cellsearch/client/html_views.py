"""How reports and trial tables show in Jupyter (``_repr_html_``): small, escaped tables.

No script and no style sheet: a notebook shows them as they are, and so does GitHub's
rendering of a saved notebook. The full report, with its plots, is the API's page
(``/api/v1/studies/NAME/report.html``) or :meth:`StudyReport.figures`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cellsearch.client.records import Trial
from cellsearch.client.text import number

if TYPE_CHECKING:
    from cellsearch.search.report.model import StudyReport
    from cellsearch.search.report.suite_model import SuiteReport

MAX_ROWS = 50
"""Trials shown in a notebook's table; ``to_frame()`` has them all."""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: object, digits: int = 4) -> str:
    return number(value, digits, html=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """An HTML table of cells already escaped; ``right`` aligns numeric columns."""

    def cell(tag: str, text: str, numeric: bool) -> str:
        return f'<{tag} style="text-align:{"right" if numeric else "left"}">{text}</{tag}>'

    head = "".join(cell("th", _esc(h), r) for h, r in zip(headers, right, strict=True))
    body = "".join(
        "<tr>" + "".join(cell("td", c, r) for c, r in zip(row, right, strict=True)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def trials_html(trials: Sequence[Trial]) -> str:
    """The first :data:`MAX_ROWS` trials: number, cell, state, value, epochs, seconds and
    the hyperparameters; a line says how many more there are."""
    if not trials:
        return "<p>no trials</p>"
    rows = []
    for t in trials[:MAX_ROWS]:
        state = t.state + (f" ({t.failure_kind})" if t.failure_kind else "")
        params = ", ".join(f"{k}={number(v)}" for k, v in t.params.items() if k != "cell_type")
        epochs = t.epochs_run or (len(t.learning_curve) or None)
        rows.append([_esc(t.number), _esc(t.cell_type or "-"), _esc(state), _num(t.value),
                     _num(epochs), _num(t.seconds, 3), _esc(params)])  # fmt: skip
    headers = ["#", "cell", "state", "value", "epochs", "seconds", "hyperparameters"]
    out = table(headers, rows, [True, False, False, True, True, True, False])
    if len(trials) > MAX_ROWS:
        out += f"<p>... and {len(trials) - MAX_ROWS} more trials (<code>to_frame()</code>)</p>"
    return out


def report_html(report: StudyReport) -> str:
    """The verdict, the warnings, a row per cell type and the pairwise tests."""
    study = report.study
    objective = study.metric_label or study.metric
    head = (
        f"<h3>{_esc(study.study_name)}: {_esc(objective)} ({_esc(study.direction)})</h3>"
        f"<p>{_esc(study.status)}, {study.n_finished} of {study.n_trials} trials finished"
        + (f"; baseline {_num(study.baseline)}" if study.baseline is not None else "")
        + f"</p><p><b>{_esc(report.verdict)}</b></p>"
    )
    head += "".join(f"<p>warning: {_esc(w)}</p>" for w in report.warnings)
    rows = []
    for cell in report.cells:
        best, at = cell.best, cell.expected_best_at_budget
        interval = f"[{_num(best.ci_low)}, {_num(best.ci_high)}]" if best else _num(None)
        rows.append([
            _esc(cell.cell_type), _esc(cell.counts.complete), _esc(cell.counts.pruned),
            _esc(cell.failures.diverged + cell.failures.error), _num(best.value if best else None),
            interval, _num(cell.median), _num(at.mean if at else None),
            _num(best.param_count if best else None),
        ])  # fmt: skip
    n = next((c.expected_best_at_budget.n for c in report.cells if c.expected_best_at_budget), "n")
    headers = ["cell", "complete", "pruned", "failed", "best", "95% CI of the best", "median",
               f"E[best of {n}]", "params"]  # fmt: skip
    out = head + table(headers, rows, [False, True, True, True, True, True, True, True, True])
    pairs = report.comparison.pairs if report.comparison is not None else []
    if pairs:
        pair_rows = [
            [_esc(p.a), _esc(p.b), _num(p.p_best_of_n, 3), _num(p.p_value, 3),
             _num(p.p_adjusted, 3), _esc(p.better or "-")]
            for p in pairs
        ]  # fmt: skip
        pair_headers = ["A", "B", "P(A's best beats B's)", "p", "Holm p", "better"]
        out += table(pair_headers, pair_rows, [False, False, True, True, True, False])
    return out


def suite_report_html(report: SuiteReport) -> str:
    """The verdict, the warnings, and each task's score per cell type with its rank."""
    cells = report.suite.cell_types
    out = f"<h3>{_esc(report.suite.name)}</h3><p><b>{_esc(report.verdict)}</b></p>"
    out += "".join(f"<p>warning: {_esc(w)}</p>" for w in report.warnings)
    rows = []
    for task, scores in report.scores.items():
        row = [_esc(task)]
        for cell in cells:
            score = scores.get(cell)
            rank = "" if score is None or score.rank is None else f" (#{score.rank:g})"
            row.append(_num(score.value if score else None) + rank)
        rows.append(row)
    if report.comparison is not None:
        ranks = report.comparison.average_ranks
        rows.append(["average rank", *(_num(ranks.get(c), 3) for c in cells)])
    return out + table(["task", *cells], rows, [False, *[True] * len(cells)])
