"""The critical-difference diagram of a suite comparison, drawn as plain SVG.

Input: the :class:`~cellsearch.search.report.suite_model.SuiteComparison` of
:func:`cellsearch.search.report.suite_stats.compare_over_tasks` (its ``cd`` section,
``n_tasks`` and ``verdict``). No plotting library: the SVG is a
few lines and text elements, every name HTML-escaped, so that it can be embedded in a
page or saved as a file.
"""

from __future__ import annotations

import html

from cellsearch.search.report.suite_model import SuiteComparison


def _svg_text(x: float, y: float, text: str, anchor: str, size: int = 12) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


def _svg_line(x1: float, y1: float, x2: float, y2: float, width: float = 1.0) -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
        f'stroke="#222" stroke-width="{width}"/>'
    )


def cd_diagram_svg(result: SuiteComparison, width: int = 720) -> str:
    """Draw the critical-difference diagram of :func:`compare_over_tasks` as plain SVG.

    The axis carries average ranks with rank 1 (best) on the right, as in Demsar
    (2006); each cell type is a tick joined to its name (the better half labelled on
    the right, the rest on the left); thick bars join each clique of two or more cell
    types that no corrected test separates; the Nemenyi CD is drawn above for scale.
    """
    cd = result.cd
    order, ranks = cd.order, cd.average_ranks
    k = len(order)
    if k == 0 or any(r is None for r in ranks):
        message = "no cell type has a score on every compared task"
        body = [_svg_text(width / 2, 30, message, "middle")]
        return _svg_wrap(width, 50, body, message)
    margin = 170.0
    left, right, axis_y = margin, width - margin, 58.0
    hi = max(2, k)

    def x_of(rank: float) -> float:
        return right - (rank - 1.0) / (hi - 1.0) * (right - left)

    body = [_svg_line(left, axis_y, right, axis_y, 1.5)]
    for tick in range(1, hi + 1):
        body.append(_svg_line(x_of(tick), axis_y - 6, x_of(tick), axis_y))
        body.append(_svg_text(x_of(tick), axis_y - 10, str(tick), "middle", 11))
    crit = cd.critical_difference
    if crit is not None:
        span = min(float(crit), hi - 1.0)
        body.append(_svg_line(left, 18, x_of(hi - span), 18, 1.5))
        body.append(_svg_text(x_of(hi - span) + 6, 22, f"CD = {crit:.2f} (Nemenyi)", "start", 11))
    bars = [c for c in cd.cliques if len(c) >= 2]
    for row, clique in enumerate(bars):
        xs = [x_of(float(ranks[order.index(name)] or 1.0)) for name in clique]
        y = axis_y + 14 + 8 * row
        body.append(_svg_line(min(xs) - 4, y, max(xs) + 4, y, 4.5))
    top = axis_y + 14 + 8 * len(bars) + 14
    n_right = (k + 1) // 2
    for pos, (name, rank) in enumerate(zip(order, ranks, strict=True)):
        r = float(rank or 1.0)
        on_right = pos < n_right
        row = pos if on_right else k - 1 - pos
        y = top + 20 * row
        end = right + 14 if on_right else left - 14
        label = name if len(name) <= 18 else name[:16] + "\u2026"
        body.append(_svg_line(x_of(r), axis_y, x_of(r), y))
        body.append(_svg_line(x_of(r), y, end, y))
        text = f"{label} ({r:.2f})"
        anchor = "start" if on_right else "end"
        body.append(f'<g class="cell"><title>{html.escape(name)}</title>')
        body += [_svg_text(end + (4 if on_right else -4), y + 4, text, anchor), "</g>"]
    height = top + 20 * max(n_right, k - n_right) + 22
    caption = f"{result.n_tasks} tasks; bars join cell types no corrected test separates"
    body.append(_svg_text(width / 2, height - 8, caption, "middle", 11))
    return _svg_wrap(width, height, body, result.verdict)


def _svg_wrap(width: float, height: float, body: list[str], title: str) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" font-family="sans-serif">'
    )
    return "\n".join([head, f"<title>{html.escape(str(title))}</title>", *body, "</svg>"])
