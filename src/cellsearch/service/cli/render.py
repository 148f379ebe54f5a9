"""What the CLI prints for studies, trials, data sets and the catalog (plain text).

Lines fit 80 columns (:mod:`.text`); messages and names print as written, never as
markup. The progress of a running study is :mod:`.progress`; the report :mod:`.report_text`.
"""

from __future__ import annotations

from collections.abc import Sequence

from cellsearch.client import Cell, Dataset, Study, StudyDetail, Task, Trial, Validation
from cellsearch.service.cli.text import echo_lines, num, table, table_width, width, wrap

STATES = ("complete", "pruned", "failed", "running", "waiting", "requeued")


def _progress(study: Study) -> str:
    c = study.counts
    running = f", {c.running} running" if c.running else ""
    return f"{c.finished}/{study.n_trials}{running}"


def print_studies(studies: Sequence[Study]) -> None:
    """One row per study: status, task, progress, cells, creation time."""
    if not studies:
        echo_lines(["no studies yet: `cellsearch submit SPEC.yaml`"])
        return
    rows = [
        [s.name, s.status, s.task, _progress(s), ", ".join(s.cell_types),
         f"{s.created_at:%Y-%m-%d %H:%M}"]
        for s in studies
    ]  # fmt: skip
    headers = ["name", "status", "task", "finished", "cells", "created"]
    lines = table(headers, rows, wrap_column=4)
    notes = sorted({s.note for s in studies if s.note})
    for note in notes:  # one line per distinct note, naming the studies it holds up
        names = ", ".join(s.name for s in studies if s.note == note)
        lines += wrap(f"{names}: {note}")
    echo_lines(lines)


def print_study(study: StudyDetail) -> None:
    """A study: status, objective, counts by state and by cell type, best trial."""
    c = study.counts
    objective = study.objective or study.spec.get("objective", {}).get("metric", "")
    lines = [
        f"{study.name}: {study.status}, task {study.task}, "
        f"{c.finished} of {study.n_trials} trials finished",
    ]
    if study.note:
        lines += wrap(study.note)
    if objective:
        lines.append(f"objective: {objective}")
    lines += [""]
    counts = [str(getattr(c, k)) for k in STATES]
    lines += table(list(STATES), [counts], right=[True] * len(STATES))
    lines += wrap(
        "failed: diverged or raised an error (counted); requeued: interrupted by a pause, a "
        "cancel or a stopped worker, or lost with a worker (not counted)."
    )
    if c.by_cell:
        lines += wrap("finished per cell: " + ", ".join(f"{k} {v}" for k, v in c.by_cell.items()))
    best = study.best_trial
    if best:
        params = ", ".join(f"{k}={num(v)}" for k, v in best.params.items() if k != "cell_type")
        lines += wrap(
            f"best: trial {best.number}, {objective or 'value'} {num(best.value, 5)} "
            f"({best.cell_type}, {best.param_count} parameters): {params}",
            indent="  ",
        )
    echo_lines(lines)


def print_datasets(datasets: Sequence[Dataset]) -> None:
    """One row per uploaded data set."""
    if not datasets:
        echo_lines(["no data sets yet: `cellsearch dataset upload FILE --name NAME`"])
        return
    headers = ["name", "id", "kind", "sequences", "length", "features", "classes"]
    rows = [
        [d.name, d.id, d.kind, str(d.n_sequences), str(d.max_length), str(d.n_features),
         num(d.n_classes)]
        for d in datasets
    ]  # fmt: skip
    echo_lines(table(headers, rows, right=[False, False, False, True, True, True, True]))


def print_trials(trials: Sequence[Trial], objective: str) -> None:
    """One row per trial; its hyperparameters on the row, or under it when too wide."""
    if not trials:
        echo_lines(["no trials match"])
        return
    headers = ["#", "cell", "state", objective or "value", "epochs", "seconds"]
    rows = []
    for t in trials:
        epochs = t.epochs_run or (len(t.learning_curve) or None)
        state = t.state + (f" ({t.failure_kind})" if t.failure_kind else "")
        rows.append([str(t.number), t.cell_type or "-", state, num(t.value), num(epochs),
                     num(t.seconds, 3)])  # fmt: skip
    params = [
        " ".join(f"{k}={num(v)}" for k, v in t.params.items() if k != "cell_type") for t in trials
    ]
    right = [True, False, False, True, True, True]
    wide = [[*r, p] for r, p in zip(rows, params, strict=True)]
    if table_width([*headers, "hyperparameters"], wide) <= width():
        echo_lines(table([*headers, "hyperparameters"], wide, right=[*right, False]))
        return
    lines = table(headers, rows, right=right)
    out = lines[:2]
    for line, text in zip(lines[2:], params, strict=True):
        out += [line, *wrap(text, indent="      ")]
    echo_lines(out)


def print_cells(cells: Sequence[Cell]) -> None:
    """The registered cells: name, what they are, options, parameters per layer."""
    rows = [
        [c.name, c.title, ", ".join(o.name for o in c.options) or "-",
         str(c.param_count_example)]
        for c in cells
    ]  # fmt: skip
    echo_lines(table(["name", "cell", "options", "params (H=64)"], rows, wrap_column=1,
                     right=[False, False, False, True]))  # fmt: skip
    echo_lines(wrap("params (H=64): parameters of one layer with one input and 64 hidden units."))


def print_tasks(tasks: Sequence[Task]) -> None:
    """The task kinds: name, title, trivial baseline."""
    rows = [[t.kind, t.title, t.baseline] for t in tasks]
    echo_lines(table(["kind", "task", "baseline"], rows, wrap_column=2))


def print_validation(result: Validation) -> None:
    """What a valid spec would make, part by part."""
    name = result.name
    lines = [f"valid: {name} would run {result.n_trials} trials, "
             f"{result.trials_per_cell} per cell type"]  # fmt: skip
    width = max(len(k) for k in result.summary)
    for key, text in result.summary.items():
        lines += wrap(text, indent=" " * (width + 4), first=f"  {key.rjust(width)}: ")
    if not result.name_available:
        lines += wrap(f"but a study named {name!r} exists already: submit would be refused "
                      "(choose another name, or `cellsearch delete` the old study)")  # fmt: skip
    echo_lines(lines)
