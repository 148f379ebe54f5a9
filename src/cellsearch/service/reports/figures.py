"""Plotly figure specs (plain dicts) for the comparison report page.

Each builder returns ``{"id", "title", "data", "layout"}`` or None when the report
holds nothing to plot for it; :func:`figures` collects the non-empty ones.

Every plot of the objective names it ("validation MSE"), draws the task's baseline
where there is one, switches to a log axis when the plotted values span more than two
decades (:func:`axis_type`), and cuts its bands at the objective's bounds (an MSE band
never goes below 0; on a log axis it stops at the bottom of the plotted range).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from cellsearch.search.report.model import StudyReport

Figure = dict[str, Any]
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _color(index: int, alpha: float = 1.0) -> str:
    code = _PALETTE[index % len(_PALETTE)]
    red, green, blue = (int(code[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


LOG_SPAN = 100.0  # above this max/min ratio of the plotted values, the axis is logarithmic


def metric_label(report: StudyReport) -> str:
    """The objective in words ("validation MSE"), or its raw name where the task does not
    say."""
    return report.study.metric_label or report.study.metric


def axis_type(values: Iterable[float | None]) -> str:
    """``"log"`` when the values are all positive and span more than two decades."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite or min(finite) <= 0:
        return "linear"
    return "log" if max(finite) / min(finite) > LOG_SPAN else "linear"


def clip_band(
    low: list[Any],
    high: list[Any],
    bounds: tuple[float | None, float | None],
    *,
    log: bool,
    floor: float,
) -> tuple[list[Any], list[Any]]:
    """A band's edges cut at the objective's ``(lowest, highest)`` values (either None:
    unbounded) and, on a log axis, at ``floor``."""
    bottom, top = bounds
    if log:
        bottom = floor if bottom is None else max(bottom, floor)

    def cut(v: Any) -> Any:
        if v is None:
            return None
        if bottom is not None:
            v = max(v, bottom)
        return v if top is None else min(v, top)

    return [cut(v) for v in low], [cut(v) for v in high]


def _bounds(report: StudyReport) -> tuple[float | None, float | None]:
    return report.study.metric_low, report.study.metric_high


def _baseline(report: StudyReport, layout: dict[str, Any]) -> None:
    """Draw the task's baseline as a dashed horizontal line with its description."""
    study = report.study
    if study.baseline is None:
        return
    value = study.baseline
    label = f"baseline {value:.4g}: {study.baseline_description or 'trivial predictor'}"
    layout["shapes"] = [
        {
            "type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": value, "y1": value,
            "line": {"dash": "dash", "color": "#444"},
        }
    ]  # fmt: skip
    layout["annotations"] = [
        {"xref": "paper", "x": 1, "y": value, "text": label[:90], "showarrow": False,
         "xanchor": "right", "yanchor": "bottom", "font": {"size": 11}}
    ]  # fmt: skip


def _metric_layout(
    report: StudyReport, x_title: str, y_title: str, values: list[Any], **extra: Any
) -> dict[str, Any]:
    """A layout whose y axis shows the objective: named, log when needed, with baseline."""
    kind = axis_type([*values, report.study.baseline])
    layout = _layout(x_title, y_title, **extra)
    layout["yaxis"]["type"] = kind
    if kind == "log":
        layout["yaxis"]["exponentformat"] = "power"  # 10^-4, not plotly's "100µ"
    _baseline(report, layout)
    return layout


def _floor(values: Iterable[float | None]) -> float:
    """The lowest edge a band may reach on a log axis: a decade under the lowest value."""
    positive = [v for v in values if v is not None and v > 0]
    return min(positive) / 10 if positive else 1e-12


def _layout(x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "margin": {"t": 30, "r": 20},
        "legend": {"orientation": "h", "y": -0.2},
        **extra,
    }


def _band(
    x: list[Any], mid: list[Any], low: list[Any], high: list[Any], name: str, index: int
) -> list[dict[str, Any]]:
    """A line with a shaded band: upper edge, lower edge filled to it, then the line."""
    edge = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False}
    return [
        {"type": "scatter", "x": x, "y": high, "legendgroup": name, **edge},
        {
            "type": "scatter", "x": x, "y": low, "fill": "tonexty",
            "fillcolor": _color(index, 0.2), "legendgroup": name, **edge,
        },
        {
            "type": "scatter", "x": x, "y": mid, "mode": "lines", "name": name,
            "legendgroup": name, "line": {"color": _color(index)},
        },
    ]  # fmt: skip


def evp_figure(report: StudyReport) -> Figure | None:
    """Expected best score after n trials, mean +- one standard deviation (cell types
    with a completed trial: of the others, no best has a value)."""
    curves = [
        (i, c.cell_type, c.expected_best)
        for i, c in enumerate(report.cells)
        if c.expected_best is not None and c.n_completed
    ]
    if not curves:
        return None
    label = metric_label(report)
    means = [m for _, _, curve in curves for m in curve.mean if m is not None]
    layout = _metric_layout(report, "trials per cell type (n)", f"expected best {label}", means)
    log = layout["yaxis"]["type"] == "log"
    data: list[dict[str, Any]] = []
    for index, cell_type, curve in curves:
        mean, std = curve.mean, curve.std  # a gap (None) wherever either is missing
        pairs = list(zip(mean, std, strict=True))
        low = [None if m is None or s is None else m - s for m, s in pairs]
        high = [None if m is None or s is None else m + s for m, s in pairs]
        low, high = clip_band(low, high, _bounds(report), log=log, floor=_floor(means))
        data += _band(curve.n, mean, low, high, cell_type, index)
    title = f"Expected best {label} after n trials (mean ± 1 sd of the best of n)"
    return {"id": "plot-evp", "title": title, "data": data, "layout": layout}


def curves_figure(report: StudyReport) -> Figure | None:
    """Median learning curve with its inter-quartile band per cell type."""
    curves = [
        (i, c.cell_type, c.learning_curve)
        for i, c in enumerate(report.cells)
        if c.learning_curve is not None
    ]
    if not curves:
        return None
    label = metric_label(report)
    medians = [m for _, _, curve in curves for m in curve.median]
    layout = _metric_layout(report, "epoch", f"{label} (median, IQR)", medians)
    log = layout["yaxis"]["type"] == "log"
    data: list[dict[str, Any]] = []
    floor = _floor(medians)
    for index, cell_type, curve in curves:
        low, high = clip_band(curve.q25, curve.q75, _bounds(report), log=log, floor=floor)
        data += _band(curve.epoch, curve.median, low, high, cell_type, index)
    title = f"Learning curves: {label} per epoch (median and inter-quartile band over trials)"
    return {"id": "plot-curves", "title": title, "data": data, "layout": layout}


def importance_figure(report: StudyReport) -> Figure | None:
    """Overall importance: cell type against the other hyperparameters, each share with
    its bootstrap interval; the parameters the test calls important in full colour."""
    overall = report.importance.overall if report.importance is not None else None
    if overall is None or not overall.params:
        return None
    params = overall.params[::-1]  # largest on top
    colors = [
        ("#d62728" if p.name == "cell_type" else "#1f77b4") if p.important else "#bbbbbb"
        for p in params
    ]
    data = [
        {
            "type": "bar", "orientation": "h", "x": [p.share for p in params],
            "y": [p.name for p in params], "marker": {"color": colors}, "name": "share",
            "error_x": {
                "type": "data", "symmetric": False,
                "array": [max(0.0, (p.share_high or p.share) - p.share) for p in params],
                "arrayminus": [max(0.0, p.share - (p.share_low or p.share)) for p in params],
            },
        }
    ]  # fmt: skip
    layout = _layout("share of the importance (95% bootstrap interval)", "",
                     margin={"l": 140, "t": 30})  # fmt: skip
    title = (
        f"Hyperparameter importance for the {metric_label(report)}, whole study "
        f"({overall.n_trials} completed trials; grey: not distinguishable from noise)"
    )
    return {"id": "plot-importance", "title": title, "data": data, "layout": layout}


def importance_cells_figure(report: StudyReport) -> Figure | None:
    """Importance within each cell type, grouped bars."""
    per_cell = report.importance.per_cell if report.importance is not None else {}
    order = [c.cell_type for c in report.cells]
    data = [
        {
            "type": "bar", "name": cell, "x": list(found.importances),
            "y": list(found.importances.values()),
            "marker": {"color": _color(order.index(cell) if cell in order else 0)},
        }
        for cell, found in per_cell.items()
        if found is not None and found.importances
    ]  # fmt: skip
    if not data:
        return None
    layout = _layout("hyperparameter", "importance (share)", barmode="group")
    title = f"Importance for the {metric_label(report)} within each cell type"
    return {"id": "plot-importance-cells", "title": title, "data": data, "layout": layout}


def scatter_figure(report: StudyReport) -> Figure | None:
    """Completed trials' value against parameter count."""
    data = []
    for index, cell in enumerate(report.cells):
        points = cell.points
        pairs = [
            (p, v) for p, v in zip(points.param_count, points.value, strict=True)
            if p is not None and v is not None
        ]  # fmt: skip
        if pairs:
            data.append({
                "type": "scattergl" if len(pairs) > 2000 else "scatter", "mode": "markers",
                "name": cell.cell_type, "x": [p for p, _ in pairs], "y": [v for _, v in pairs],
                "marker": {"color": _color(index, 0.6), "size": 6},
            })  # fmt: skip
    if not data:
        return None
    label = metric_label(report)
    values = [v for trace in data for v in trace["y"]]
    x_axis = {"type": "log", "title": {"text": "parameter count"}}
    layout = _metric_layout(report, "parameter count", label, values, xaxis=x_axis)
    title = f"{label[0].upper()}{label[1:]} of each completed trial against its parameter count"
    return {"id": "plot-scatter", "title": title, "data": data, "layout": layout}


def allocation_figure(report: StudyReport) -> Figure | None:
    """Cumulative number of trials per cell type against trial number."""
    by_number = report.allocation.trial_number
    order = [c.cell_type for c in report.cells]
    order += [cell for cell in by_number if cell not in order]
    data = [
        {
            "type": "scatter", "mode": "lines", "name": cell, "x": numbers,
            "line": {"shape": "hv", "color": _color(order.index(cell))},
            "y": list(range(1, len(numbers) + 1)),
        }
        for cell, numbers in by_number.items()
    ]  # fmt: skip
    if not data:
        return None
    layout = _layout("trial number", "trials of this cell type so far")
    return {"id": "plot-allocation", "title": "Trial allocation over time", "data": data,
            "layout": layout}  # fmt: skip


_BUILDERS: tuple[Callable[[StudyReport], Figure | None], ...] = (
    evp_figure,
    curves_figure,
    importance_figure,
    importance_cells_figure,
    scatter_figure,
    allocation_figure,
)


def figures(report: StudyReport) -> list[Figure]:
    """All figures the report has data for, in page order."""
    return [fig for build in _BUILDERS if (fig := build(report)) is not None]
