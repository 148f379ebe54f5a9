"""Plotly figure specs (plain dicts) for the comparison report page.

Each builder returns ``{"id", "title", "data", "layout"}`` or None when the report
holds nothing to plot for it; :func:`figures` collects the non-empty ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Figure = dict[str, Any]
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip


def _color(index: int, alpha: float = 1.0) -> str:
    code = _PALETTE[index % len(_PALETTE)]
    red, green, blue = (int(code[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


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


def evp_figure(report: dict[str, Any]) -> Figure | None:
    """Expected best score after n trials, mean +- one standard deviation."""
    data: list[dict[str, Any]] = []
    for index, cell in enumerate(report["cells"]):
        curve = cell.get("expected_best")
        if not curve:
            continue
        mean, std = curve["mean"], curve["std"]
        low = [m - s for m, s in zip(mean, std, strict=True)]
        high = [m + s for m, s in zip(mean, std, strict=True)]
        data += _band(curve["n"], mean, low, high, cell["cell_type"], index)
    if not data:
        return None
    study = report["study"]
    layout = _layout("trials per cell type (n)", f"expected best {study['metric']}")
    if study.get("baseline") is not None:
        label = study.get("baseline_description") or "baseline"
        layout["shapes"] = [
            {
                "type": "line", "xref": "paper", "x0": 0, "x1": 1,
                "y0": study["baseline"], "y1": study["baseline"],
                "line": {"dash": "dash", "color": "#444"},
            }
        ]  # fmt: skip
        layout["annotations"] = [
            {"xref": "paper", "x": 1, "y": study["baseline"], "text": label, "showarrow": False,
             "xanchor": "right", "yanchor": "bottom"}
        ]  # fmt: skip
    title = "Expected best validation score after n trials (mean ± 1 sd)"
    return {"id": "plot-evp", "title": title, "data": data, "layout": layout}


def curves_figure(report: dict[str, Any]) -> Figure | None:
    """Median learning curve with its inter-quartile band per cell type."""
    data: list[dict[str, Any]] = []
    for index, cell in enumerate(report["cells"]):
        curve = cell.get("learning_curve")
        if curve:
            data += _band(
                curve["epoch"], curve["median"], curve["q25"], curve["q75"],
                cell["cell_type"], index,
            )  # fmt: skip
    if not data:
        return None
    layout = _layout("epoch", "validation value (median, IQR)")
    title = "Learning curves: median and inter-quartile band"
    return {"id": "plot-curves", "title": title, "data": data, "layout": layout}


def _importance_section(report: dict[str, Any]) -> dict[str, Any]:
    return report.get("importance") or {}


def importance_figure(report: dict[str, Any]) -> Figure | None:
    """Overall importance: cell type against the other hyperparameters."""
    overall = _importance_section(report).get("overall")
    if not overall or not overall["importances"]:
        return None
    names = list(overall["importances"])[::-1]  # largest on top
    colors = ["#d62728" if n == "cell_type" else "#1f77b4" for n in names]
    data = [
        {
            "type": "bar", "orientation": "h", "x": [overall["importances"][n] for n in names],
            "y": names, "marker": {"color": colors}, "name": "importance",
        }
    ]  # fmt: skip
    layout = _layout("importance (share)", "", margin={"l": 140, "t": 30})
    title = f"Hyperparameter importance, whole study ({overall['n_trials']} trials)"
    return {"id": "plot-importance", "title": title, "data": data, "layout": layout}


def importance_cells_figure(report: dict[str, Any]) -> Figure | None:
    """Importance within each cell type, grouped bars."""
    per_cell = _importance_section(report).get("per_cell") or {}
    order = [c["cell_type"] for c in report["cells"]]
    data = [
        {
            "type": "bar", "name": cell, "x": list(found["importances"]),
            "y": list(found["importances"].values()),
            "marker": {"color": _color(order.index(cell) if cell in order else 0)},
        }
        for cell, found in per_cell.items()
        if found and found["importances"]
    ]  # fmt: skip
    if not data:
        return None
    layout = _layout("hyperparameter", "importance (share)", barmode="group")
    return {"id": "plot-importance-cells", "title": "Importance within each cell type",
            "data": data, "layout": layout}  # fmt: skip


def scatter_figure(report: dict[str, Any]) -> Figure | None:
    """Completed trials' value against parameter count."""
    data = []
    for index, cell in enumerate(report["cells"]):
        points = cell["points"]
        pairs = [
            (p, v) for p, v in zip(points["param_count"], points["value"], strict=True)
            if p is not None and v is not None
        ]  # fmt: skip
        if pairs:
            data.append({
                "type": "scattergl" if len(pairs) > 2000 else "scatter", "mode": "markers",
                "name": cell["cell_type"], "x": [p for p, _ in pairs], "y": [v for _, v in pairs],
                "marker": {"color": _color(index, 0.6), "size": 6},
            })  # fmt: skip
    if not data:
        return None
    layout = _layout("parameter count", report["study"]["metric"], xaxis={"type": "log",
                     "title": {"text": "parameter count"}})  # fmt: skip
    return {"id": "plot-scatter", "title": "Value against parameter count", "data": data,
            "layout": layout}  # fmt: skip


def allocation_figure(report: dict[str, Any]) -> Figure | None:
    """Cumulative number of trials per cell type against trial number."""
    by_number = report["allocation"]["trial_number"]
    order = [c["cell_type"] for c in report["cells"]]
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


_BUILDERS: tuple[Callable[[dict[str, Any]], Figure | None], ...] = (
    evp_figure,
    curves_figure,
    importance_figure,
    importance_cells_figure,
    scatter_figure,
    allocation_figure,
)


def figures(report: dict[str, Any]) -> list[Figure]:
    """All figures the report has data for, in page order."""
    return [fig for build in _BUILDERS if (fig := build(report)) is not None]
