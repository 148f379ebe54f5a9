"""What the fuzzer must know beyond the published schema: the study spec's cross-field rules.

JSON Schema states every bound and limit of a spec (service/studies/spec_schema.py), but not the
rules that tie two fields together. The published schema says them in words; this
module applies them to a schema-valid spec the fuzzer drew for a positive case, changing
as little as it can, so that "valid by the schema and by these rules" must mean 201 (or
409 for a name taken). A warm start names studies that must exist on the server (and fit
the spec): a positive spec has none. Likewise an upload's file: its format (an NPZ of the
declared kind) is described in words, so a positive upload carries a valid file, and a
positive import a valid study archive. Negative cases are never touched.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from cellsearch.search.study.hyperparameters import HYPERPARAMETERS, solved
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.param_forms import choices
from cellsearch.search.study.spec import SearchSpace
from cellsearch.search.tasks.bundled import SERIES_LENGTHS
from cellsearch.service.studies.spec_checks import RESERVED_STUDY_NAMES

DEFAULT_CELLS = choices(SearchSpace().cell_type)
DEFAULT_SIZES = {"n_train": 8000, "n_val": 2000, "n_test": 2000}
DEFAULT_FRACTIONS = {  # kind -> (val, test) defaults
    "digits": (0.15, 0.15), "dataset": (0.15, 0.15), "forecast": (0.15, 0.15),
    "chorales": (0.2, 0.2), "ucr": (0.2, None),
}  # fmt: skip


def repair_spec(body: dict[str, Any], limits: SpecLimits, dataset_id: str | None) -> None:
    """Make a schema-valid spec obey the cross-field rules, in place."""
    space = body.get("space")
    if isinstance(space, dict):
        _repair_space(space, body.get("param_budget"))
    objective = body.get("objective")
    if isinstance(objective, dict) and objective.get("metric", "val_loss") == "val_loss":
        objective["direction"] = "minimize"  # val_loss can only be minimized
    task = body.get("task")
    if isinstance(task, dict):
        _repair_task(task, limits, dataset_id)
    reevaluate = body.get("reevaluate")
    if isinstance(reevaluate, dict):
        _repair_reevaluate(body, reevaluate, limits)
    body.pop("warm_start", None)  # it names studies that must exist here: off


def repair_import(body: dict[str, Any], archive: bytes, taken: str) -> None:
    """A positive import carries a valid study archive (``archive``, of study ``taken``),
    under a name the API does not keep for a path of its own (409 if it is taken)."""
    body["file"] = archive
    if body.get("name") in RESERVED_STUDY_NAMES:
        body["name"] = taken


def repair_suite(body: dict[str, Any], limits: SpecLimits, dataset_id: str | None) -> None:
    """Make a schema-valid suite spec obey the rules: the template's as a study spec's,
    each task's, and no two tasks the same (a repeat becomes an adding task of its own
    length)."""
    study = body.get("study")
    if isinstance(study, dict):
        repair_spec(study, limits, dataset_id)
    seen: set[str] = set()
    for index, task in enumerate(body.get("tasks") or []):
        if isinstance(task, dict):
            _repair_task(task, limits, dataset_id)
            if _task_key(task) in seen:
                task.clear()
                task.update(kind="adding", seq_len=2 + index, n_train=8, n_val=8, n_test=8)
            seen.add(_task_key(task))


def _task_key(task: dict[str, Any]) -> str:
    """What makes two tasks the same for the suite: the task with its defaults filled in
    (``{"kind": "digits"}`` repeats ``{"kind": "digits", "mode": "rows"}``)."""
    from pydantic import TypeAdapter, ValidationError

    from cellsearch.search.tasks.catalog import TaskSpec

    try:
        return TypeAdapter(TaskSpec).validate_python(task).model_dump_json()
    except ValidationError:
        return json.dumps(task, sort_keys=True)


def _repair_reevaluate(
    body: dict[str, Any], reevaluate: dict[str, Any], limits: SpecLimits
) -> None:
    """top_k at most the trials each cell type gets; search plus re-evaluation trials
    within max_trials."""
    space = body.get("space")
    if not isinstance(space, dict):
        space = {}
    cell_type = space.get("cell_type", DEFAULT_CELLS)
    cells = len(cell_type) if isinstance(cell_type, list) else 1
    budget = body.get("budget")
    if not isinstance(budget, dict):
        budget = {}
    n_trials = budget.get("n_trials", 1)
    top_k = min(reevaluate.get("top_k", 3), max(n_trials // cells, 1))
    reevaluate["top_k"] = top_k
    room = (limits.max_trials - n_trials) // (cells * top_k)
    reevaluate["seeds"] = max(2, min(reevaluate.get("seeds", 5), room))
    if n_trials + cells * top_k * reevaluate["seeds"] > limits.max_trials:
        body["reevaluate"] = None  # no room for even two seeds


def _repair_space(space: dict[str, Any], param_budget: int | None) -> None:
    for entry in solved(HYPERPARAMETERS, param_budget):
        space.pop(entry.name, None)  # param_budget or hidden_size, not both
    cell_type = space.get("cell_type", DEFAULT_CELLS)
    cells = cell_type if isinstance(cell_type, list) else [cell_type]
    for key in list(space):
        if "." in key and key.split(".", 1)[0] not in cells:
            del space[key]  # options only for listed cells
    options = space.get("cell_options")
    if isinstance(options, dict):
        for cell in list(options):
            if cell not in cells:
                del options[cell]
        for values in options.values():
            for value in values.values():
                _order(value)
    for value in space.values():
        _order(value)


def _order(value: Any) -> None:
    """A range's low <= high."""
    if isinstance(value, dict) and {"low", "high"} <= value.keys():
        low, high = value["low"], value["high"]
        if low > high:
            value["low"], value["high"] = high, low


def _repair_task(task: dict[str, Any], limits: SpecLimits, dataset_id: str | None) -> None:
    kind = task.get("kind")
    sizes = {k: task.get(k, v) for k, v in DEFAULT_SIZES.items()}
    if kind in ("adding", "copy") and sum(sizes.values()) > limits.max_dataset_size:
        share = limits.max_dataset_size // 3  # the sum of the three is limited
        for k, v in sizes.items():
            task[k] = min(v, share)
    if kind in DEFAULT_FRACTIONS:
        val_default, test_default = DEFAULT_FRACTIONS[kind]
        val, test = task.get("val_fraction", val_default), task.get("test_fraction", test_default)
        if test is not None and val + test > 0.9:  # val_fraction + test_fraction <= 0.9
            task["val_fraction"], task["test_fraction"] = val_default, test_default
    if kind == "forecast":
        _fit_window(task)
    if kind == "dataset" and dataset_id is not None:
        task["dataset_id"] = dataset_id  # a data set that exists


def _fit_window(task: dict[str, Any]) -> None:
    """window + horizon fit the training part, and horizon the validation and test parts."""
    n = SERIES_LENGTHS[task["name"]]
    val, test = task.get("val_fraction", 0.15), task.get("test_fraction", 0.15)
    train_end, val_end = round(n * (1 - val - test)), round(n * (1 - test))
    horizon = task.get("horizon", 1)
    if min(val_end - train_end, n - val_end) < horizon:
        task["horizon"] = horizon = 1
    if task.get("window", 12) + horizon > train_end:
        task["window"] = 1


def valid_upload(kind: str | None, seed: int = 0) -> bytes:
    """A small NPZ data set of ``kind`` (None: one whose kind can be inferred)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(24, 5, 2)).astype(np.float32)  # (N, T, F)
    arrays: dict[str, np.ndarray] = {"x": x}
    if kind in (None, "classification"):
        arrays["y"] = np.arange(24) % 3
    elif kind == "regression":
        arrays["y"] = rng.normal(size=24)
    elif kind == "per_step":
        arrays["y"] = rng.normal(size=(24, 5))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy types **kwds as allow_pickle
    return buffer.getvalue()
