"""The published JSON Schema of a study spec, with this server's limits stated in it.

Pydantic's schema of :class:`~cellsearch.search.study.spec.StudySpec` says the shapes;
this module adds what the server also enforces, so that a spec valid by the published
schema is accepted: each limit of :class:`~cellsearch.search.study.limits.SpecLimits` as
a ``maximum`` or ``maxItems``, the bounds of each search-space parameter (from the table
of hyperparameters, :mod:`cellsearch.search.study.hyperparameters`), the cell and
optimizer names as enums, and each cell's options. Rules that JSON Schema cannot state
(a range's ``low <= high``, sizes whose sum is limited, the split fractions' sum, options
only for listed cells, ``param_budget`` without ``space.hidden_size``,
``val_loss`` only minimised, a forecasting window that fits its series, a warm start's
studies that must exist here and fit the spec) are said in the ``description`` of the
part they concern, and the server names them in its 422.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cellsearch.models import CELLS
from cellsearch.search.study.hyperparameters import HYPERPARAMETERS, Hyperparameter
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.tasks import TASKS
from cellsearch.service.suites.spec import SUITE_NAME_PATTERN

Schema = dict[str, Any]

JSON_TYPES = {"int": "integer", "float": "number"}
SIZE_FIELDS = ("n_train", "n_val", "n_test")
RANGE_RULE = "A range {low, high, log} needs low <= high, and low > 0 when log is true."


def published_spec_schema(limits: SpecLimits, model: type[StudySpec] = StudySpec) -> Schema:
    """The JSON Schema of a study spec under ``limits`` (``$defs`` for the parts); ``model``
    is the spec model (one built from another table of hyperparameters, in tests)."""
    return copy.deepcopy(_published(limits, model))


@lru_cache(maxsize=8)
def _published(limits: SpecLimits, model: type[StudySpec]) -> Schema:
    schema = copy.deepcopy(model.model_json_schema())
    defs = schema["$defs"]
    table = model.space_table()
    defs["SearchSpace"] = search_space_schema(defs["SearchSpace"], limits, table)
    budget = defs["Budget"]["properties"]
    budget["n_trials"]["maximum"] = limits.max_trials
    budget["max_epochs"]["maximum"] = limits.max_epochs
    budget["max_trial_seconds"]["anyOf"][0]["maximum"] = limits.max_trial_seconds
    for entry in TASKS.values():
        _limit_task(defs[entry.spec.__name__], entry.spec, limits)
    root = schema["properties"]
    root["param_budget"]["anyOf"][0]["maximum"] = limits.max_param_budget
    solved = " or ".join(f"space.{h.name}" for h in table if h.solved_by_budget)
    if solved:
        root["param_budget"]["description"] += f" Not together with {solved}."
    root["objective"]["description"] = "metric val_loss can only be minimized."
    return schema


def published_suite_schema(limits: SpecLimits, max_tasks: int) -> Schema:
    """The JSON Schema of a suite spec under ``limits`` and at most ``max_tasks`` tasks:
    the study template and each task are the study spec's parts (same ``$defs``)."""
    study = published_spec_schema(limits)
    defs = study.pop("$defs")
    props = study["properties"]
    template = {
        "type": "object",
        "title": "StudyTemplate",
        "description": "Every field of a study spec except name and task: what every "
        "study of the suite shares.",
        "properties": {k: v for k, v in props.items() if k not in ("name", "task")},
        "required": [k for k in study.get("required", []) if k not in ("name", "task")],
        "additionalProperties": False,
    }
    defs["StudyTemplate"] = template
    return {
        "type": "object",
        "title": "SuiteSpec",
        "description": "Many tasks, one study template; one study per task, named "
        "<suite>-<task>. Two identical tasks are an error.",
        "properties": {
            "name": {
                "type": "string",
                "pattern": SUITE_NAME_PATTERN,
                "description": "Unique name: a-z, 0-9, '-', 40 at most.",
            },
            "description": {"type": "string", "maxLength": 2000, "default": ""},
            "tasks": {
                "type": "array",
                "items": props["task"],
                "minItems": 2,
                "maxItems": max_tasks,
                "description": "Task specs (GET /tasks), two or more, no two the same.",
            },
            "study": {"$ref": "#/$defs/StudyTemplate"},
        },
        "required": ["name", "tasks", "study"],
        "additionalProperties": False,
        "$defs": defs,
    }


def search_space_schema(
    original: Schema, limits: SpecLimits, table: Sequence[Hyperparameter] = HYPERPARAMETERS
) -> Schema:
    """The search space: each parameter's forms with its bounds and this server's limits
    (the cell type, then ``table``'s entries by kind: choices, integers, reals; then the
    cells' options)."""
    props = original["properties"]
    out: dict[str, Schema] = {
        "cell_type": _choice(list(CELLS), limits, unique=True) | _doc(props["cell_type"]),
    }
    for kind in ("choice", "int", "float"):
        for entry in (h for h in table if h.kind == kind):
            out[entry.name] = _entry(entry, limits) | _doc(props[entry.name])
    option = _param({"type": "number"}, limits, log_needs_positive=True)
    out["cell_options"] = {
        "type": "object",
        "description": props["cell_options"]["description"] + " Only for cells in cell_type.",
        "properties": {
            cell: {
                "type": "object",
                "properties": {o.name: option for o in spec.options},
                "additionalProperties": False,
            }
            for cell, spec in CELLS.items()
        },
        "additionalProperties": False,
    }
    dotted = {
        f"^{cell}\\.({'|'.join(o.name for o in spec.options)})$": option
        for cell, spec in CELLS.items()
        if spec.options
    }
    return {
        "type": "object",
        "title": original.get("title", "SearchSpace"),
        "description": original.get("description", "") + " " + RANGE_RULE,
        "properties": out,
        "patternProperties": dotted,
        "additionalProperties": False,
    }


def _entry(entry: Hyperparameter, limits: SpecLimits) -> Schema:
    """The forms of one table entry: a choice's names, or a number's bounds and limit."""
    if entry.kind == "choice":
        return _choice(list(entry.values), limits, unique=False)
    scalar = {"type": JSON_TYPES[entry.kind], **entry.bounds.schema()}
    if entry.limit is not None:
        scalar["maximum"] = getattr(limits, entry.limit)
    return _param(scalar, limits, log_needs_positive=not entry.bounds.positive)


def _doc(prop: Schema) -> Schema:
    return {k: prop[k] for k in ("description", "default", "title") if k in prop}


def _choice(names: list[str], limits: SpecLimits, *, unique: bool) -> Schema:
    items = {"type": "string", "enum": names}
    array: Schema = {
        "type": "array",
        "items": items,
        "minItems": 1,
        "maxItems": min(limits.max_choices, len(names)) if unique else limits.max_choices,
    }
    if unique:
        array["uniqueItems"] = True
    return {"anyOf": [items, array]}


def _param(scalar: Schema, limits: SpecLimits, *, log_needs_positive: bool) -> Schema:
    """A parameter's three forms: a fixed value, a choice list, a range."""
    choices = {"type": "array", "items": scalar, "minItems": 1, "maxItems": limits.max_choices}
    value_range: Schema = {
        "type": "object",
        "description": RANGE_RULE,
        "properties": {"low": scalar, "high": scalar, "log": {"type": "boolean", "default": False}},
        "required": ["low", "high"],
        "additionalProperties": False,
    }
    if log_needs_positive:
        value_range["if"] = {"properties": {"log": {"const": True}}, "required": ["log"]}
        positive = {"exclusiveMinimum": 0}
        value_range["then"] = {"properties": {"low": positive, "high": positive}}
    return {"anyOf": [scalar, choices, value_range]}


def _limit_task(schema: Schema, model: type[Any], limits: SpecLimits) -> None:
    """State the sequence-length and data-size limits on one task kind's schema."""
    props = schema["properties"]
    for name in SIZE_FIELDS:
        if name in props:
            props[name]["maximum"] = limits.max_dataset_size
            props[name]["description"] += (
                f" n_train + n_val + n_test <= {limits.max_dataset_size} (max_dataset_size)."
            )
    for name, prop in props.items():
        if prop.get("type") == "integer" and name not in SIZE_FIELDS:
            offset = _length_offset(model, name)
            if offset is not None:
                bound = limits.max_seq_len - offset
                prop["maximum"] = min(prop.get("maximum", bound), bound)
        if "enum" in prop and name != "kind":
            prop["enum"] = [v for v in prop["enum"] if _fits(model, name, v, limits)]


def _length_offset(model: type[Any], field: str) -> int | None:
    """``c`` when the task's sequence length is ``field + c``; None if it is not."""
    try:
        one, two = (model.model_construct(**{field: v}).sequence_length() for v in (1, 2))
    except (AttributeError, KeyError, NotImplementedError, TypeError):
        return None
    return int(one - 1) if two - one == 1 else None


def _fits(model: type[Any], field: str, value: Any, limits: SpecLimits) -> bool:
    try:
        task = model.model_construct(**{field: value})
        length, size = task.sequence_length(), task.dataset_size()
    except (AttributeError, KeyError, NotImplementedError, TypeError):
        return True
    return int(length) <= limits.max_seq_len and int(size) <= limits.max_dataset_size
