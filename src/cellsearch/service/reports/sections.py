"""HTML sections of the report page: tables, the partial-results banner, the legend.

Each function takes the report (:func:`cellsearch.search.report.build_report`) and
returns an HTML fragment; every string from the report is escaped here.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from cellsearch.search.report.formatting import number, percent
from cellsearch.search.report.metric import quantity_label
from cellsearch.search.report.model import BestTrial, CellSummary, Environment, StudyReport
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.service.reports.figures import metric_label

REFRESH_SECONDS = 15  # how often the page of a running study reloads itself

fmt = functools.partial(number, html=True)
"""A number on a page: :func:`~cellsearch.search.report.formatting.number`, escaped, with a
dash for None."""


def esc(value: Any) -> str:
    """``value`` as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _rate(value: float | None) -> str:
    return "&mdash;" if value is None else f"{100 * value:.1f}%"


def _better(report: StudyReport) -> str:
    return "highest" if report.study.direction == "maximize" else "lowest"


def refresh_seconds(report: StudyReport) -> int:
    """How often the page reloads itself: while the study runs or is queued; else 0."""
    return REFRESH_SECONDS if report.study.status in ("running", "queued") else 0


def partial_banner(report: StudyReport, note: str | None = None) -> str:
    """The banner of a study that has not completed: what state it is in, what to expect,
    and ``note``, what holds it up when its status alone does not say (no live worker)."""
    study = report.study
    if not study.partial:
        return ""
    status = study.status
    done = f"{study.n_finished} of {study.n_trials} trials have finished"
    if status == "cancelled":
        text = f"Partial results: the study was cancelled; {done}. These numbers are final."
    elif refresh_seconds(report):
        text = (
            f"Partial results: the study is {status}; {done}. Numbers will change: this "
            f"page reloads itself every {refresh_seconds(report)} s."
        )
    else:
        text = f"Partial results: the study is {status}; {done}. Numbers will change."
    if note:
        text += f" Nothing runs now: {note}."
    return f"<div class='banner' id='partial'>{esc(text)}</div>"


def summary_table(report: StudyReport) -> str:
    """One row per cell type: counts, the best value and its interval, E[best of n]."""
    label = esc(metric_label(report))
    head = (
        "<tr><th>cell type</th><th>complete</th><th>pruned</th><th>failed</th>"
        f"<th>best {label}</th><th>95% CI of the best</th><th>median</th>"
        "<th>E[best of n] &plusmn; sd</th><th>learned (trials)</th>"
        "<th>diverged (% of outcomes)</th><th>pruned (% of outcomes)</th></tr>"
    )
    rows = []
    for cell in report.cells:
        best, at = cell.best, cell.expected_best_at_budget
        ci = f"[{fmt(best.ci_low)}, {fmt(best.ci_high)}]" if best else "&mdash;"
        evp = "&mdash;"
        if at:
            evp = f"{fmt(at.mean)} &plusmn; {fmt(at.std, 2)} (n={at.n})"
            evp += " extrapolated" if at.extrapolated else ""
        counts = cell.counts
        failed = cell.failures.diverged + cell.failures.error
        beat_text = learned_text(cell, html=True)
        rows.append(
            f"<tr><td>{esc(cell.cell_type)}</td><td>{counts.complete}</td>"
            f"<td>{counts.pruned}</td><td>{failed}</td><td>{fmt(best.value if best else None)}</td>"
            f"<td>{ci}</td><td>{fmt(cell.median)}</td><td>{evp}</td><td>{beat_text}</td>"
            f"<td>{_rate(cell.divergence_rate)}</td><td>{_rate(cell.pruning_rate)}</td></tr>"
        )
    return f"<table id='summary'>{head}{''.join(rows)}</table>{_legend(report)}"


def _legend(report: StudyReport) -> str:
    """What each column and each interval of the summary is."""
    label = esc(metric_label(report))
    study = report.study
    replicates = report.environment.bootstrap.replicates
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
    if study.baseline is not None:
        items.append(
            f"<b>learned (trials)</b>: whether any completed trial learned the task, and how "
            f"many did: its {label} covers at least {100 * study.min_gain:.3g}% of the way "
            f"from the baseline {fmt(study.baseline)} "
            f"({esc(study.baseline_description or '')}) to the best possible value "
            "(comparison.min_gain); the share in brackets is the best trial's."
        )
    return "<ul class='legend' id='legend'>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def learned_text(cell: CellSummary, *, html: bool = False) -> str:
    """A cell type's "learned" entry: ``yes: 6 of 8 (best 99.8%)``, ``no: 0 of 8 (best
    0.6%)``: whether it learned the task, how many completed trials did, and the share of
    the way from the baseline its best trial covered; a dash where nothing is judged."""
    if cell.learned is None or cell.n_beat_baseline is None:
        return "&mdash;" if html else "-"
    gain = "" if cell.best_gain is None else f" (best {percent(cell.best_gain)})"
    return f"{'yes' if cell.learned else 'no'}: {cell.n_beat_baseline} of {cell.n_completed}{gain}"


def importance_table(report: StudyReport) -> str:
    """The importance section in words: the verdict over the whole study and within each
    cell type, and per parameter its share, effect, what noise gives and the test."""
    section = report.importance
    if section is None:
        return ""
    overall = section.overall
    verdicts = [f"<p id='importance-verdict'>{esc(overall.verdict)}</p>"] if overall else []
    for cell, found in section.per_cell.items():
        if found is not None:
            verdicts.append(f"<p class='legend'>Within {esc(cell)}: {esc(found.verdict)}</p>")
    if overall is None:
        verdicts.append(
            "<p id='importance-verdict'>Too few completed trials to estimate importance.</p>"
        )
        return "<h2>Which hyperparameters matter</h2>" + "".join(verdicts)
    head = (
        "<tr><th>parameter</th><th>share [95% interval]</th><th>effect [95% interval]</th>"
        f"<th>noise gives up to</th><th>p (Holm)</th><th>important at {section.level:g}</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{esc(p.name)}</td><td>{fmt(p.share, 2)} [{fmt(p.share_low, 2)}, "
        f"{fmt(p.share_high, 2)}]</td><td>{fmt(p.effect, 2)} [{fmt(p.effect_low, 2)}, "
        f"{fmt(p.effect_high, 2)}]</td><td>{fmt(p.null_effect, 2)}</td>"
        f"<td>{fmt(p.p_adjusted, 2)}</td><td>{'yes' if p.important else 'no'}</td></tr>"
        for p in overall.params
    )
    legend = (
        "<p class='legend'><b>effect</b>: the share of the variance of the objective's ranks "
        "a parameter's main effect explains (adjusted for its groups); <b>share</b>: its "
        "effect over the sum of effects; <b>noise gives up to</b>: the effect's "
        f"{100 * (1 - section.level):g}th percentile over {section.permutations} random "
        f"permutations of the objective values; intervals from {section.bootstrap} bootstrap "
        f"resamples of the trials. {esc(section.method)}. A test on fewer than "
        f"{section.min_trials_to_tell} completed trials finds a deciding parameter in fewer "
        "than 80% of simulated studies (benchmarks/importance.py).</p>"
    )
    return (
        "<h2>Which hyperparameters matter</h2>" + "".join(verdicts)
        + f"<table id='importance'>{head}{rows}</table>{legend}"
    )  # fmt: skip


def best_configurations(report: StudyReport, dashboard_url: str | None = None) -> str:
    """The best trial of each cell type: its scores and every hyperparameter."""
    cells = [c for c in report.cells if c.best is not None]
    if not cells:
        return ""
    bests: list[BestTrial] = [c.best for c in cells if c.best is not None]
    test_names = {b.test_metric_name for b in bests if b.test_metric_name is not None}
    test_label = ", ".join(quantity_label(n) for n in sorted(test_names)) or "test metric"
    rows: list[tuple[str, list[str]]] = [
        ("trial", [_trial_link(b.trial_number, dashboard_url) for b in bests]),
        (esc(metric_label(report)), [fmt(b.value) for b in bests]),
        (esc(test_label) + " (at the best epoch)", [fmt(b.test_metric) for b in bests]),
        ("parameters", [fmt(b.param_count) for b in bests]),
        ("seconds per epoch", [fmt(b.seconds_per_epoch, 3) for b in bests]),
    ]
    names: list[str] = []
    for best in bests:
        names += [n for n in best.hyperparameters or best.params if n not in names]
    for name in names:
        if name != "cell_type":
            values = [(b.hyperparameters or b.params).get(name) for b in bests]
            rows.append((esc(name), [fmt(v) for v in values]))
    head = "<tr><th></th>" + "".join(f"<th>{esc(c.cell_type)}</th>" for c in cells) + "</tr>"
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


def kept_models_table(report: StudyReport, models: Sequence[ArtifactEntry]) -> str:
    """A download link to each cell type's best kept model (``GET .../models/{cell}``,
    relative to the page at ``.../report.html``); nothing where no model is kept."""
    if not models:
        return ""
    rows = "".join(
        f"<tr><td>{esc(m.cell_type)}</td><td>#{m.trial_number}</td><td>{fmt(m.value)}</td>"
        f"<td><a href='{esc(model_href(m.cell_type or ''))}' download>model file</a></td></tr>"
        for m in models
    )
    head = f"<tr><th>cell type</th><th>trial</th><th>{esc(metric_label(report))}</th><th></th></tr>"
    return (
        "<h2>Kept models</h2><p>The trained model of each cell type's best completed trial "
        "whose weights were kept: one safetensors file with its configuration and task, "
        "which <code>cellsearch.load_model</code> loads without the service.</p>"
        f"<table id='kept-models'>{head}{rows}</table>"
    )


def model_href(cell_type: str) -> str:
    """The link from a report page to a cell type's best model."""
    return f"models/{quote(cell_type, safe='')}"


def _trial_link(number: int, dashboard_url: str | None) -> str:
    if not dashboard_url:
        return f"#{number}"
    href = esc(f"{dashboard_url}/trials?numbers={number}")
    return f"<a href='{href}' title='open in optuna-dashboard'>#{number}</a>"


def _listed(values: list[str] | dict[str, int]) -> str:
    """Versions (``a, b``) or counts (``cpu (12), cuda:0 (3)``), or "none recorded"."""
    if isinstance(values, dict):
        return ", ".join(f"{k} ({v})" for k, v in values.items()) or "none recorded"
    return ", ".join(values) or "none recorded"


def _environment_rows(env: Environment) -> list[tuple[str, str]]:
    """The environment's entries in words, in the report's order."""
    seed = ", ".join(str(s) for s in env.bootstrap.seed)
    return [
        ("torch", _listed(env.torch_versions)),
        ("cellsearch (workers)", _listed(env.cellsearch_versions)),
        ("optuna", env.optuna_version),
        ("cellsearch (this report)", env.report_cellsearch_version),
        ("devices (trials)", _listed(env.devices)),
        ("study seed", str(env.study_seed)),
        ("trials with a recorded seed", str(env.trial_seeds_recorded)),
        ("precision (trials)", _listed(env.precisions)),
        ("bootstrap", f"{env.bootstrap.replicates} replicates, seeded by [{seed}]"),
    ]


def environment_table(report: StudyReport) -> str:
    """The environment section as a two-column table of readable values."""
    rows = "".join(
        f"<tr><th>{esc(name)}</th><td>{esc(value)}</td></tr>"
        for name, value in _environment_rows(report.environment)
    )
    return f"<h2>Environment</h2><table id='environment'>{rows}</table>"
