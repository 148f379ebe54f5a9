"""The suite spec: many tasks, one study template; validated whole before anything is made.

A suite spec is ``{name, description?, tasks: [<task spec>, ...], study: <study spec
without name and task>}``. :func:`parse_suite` checks all of it and returns one
:class:`~cellsearch.search.study.spec.StudySpec` per task, named ``<suite>-<task>``, or
raises one :class:`~cellsearch.search.errors.SpecError` listing every problem: the
template's errors once (loc ``("study", ...)``), each task's under its index (loc
``("tasks", i, ...)``, the message opening with ``task i (kind):``), and server limits
either way.

Task names (:func:`task_labels`) are made from the task spec, readable and stable:

==========  ==========================================  ===================
kind        name                                         example
==========  ==========================================  ===================
adding      ``adding-t<seq_len>``                        ``adding-t100``
copy        ``copy-t<seq_len>``                          ``copy-t50``
digits      ``digits-<mode>``                            ``digits-rows``
ucr         the archive's name in lower case             ``gunpoint``
forecast    ``<series>-w<window>-h<horizon>``            ``airline-w12-h1``
chorales    ``chorales`` (``chorales-p<N>`` with N set)   ``chorales-p40``
dataset     the uploaded data set's name, as a slug      ``my-data``
==========  ==========================================  ===================

A slug keeps ``a-z``, ``0-9`` and single ``-``. Names are cut to fit the 63 characters a
study name may have; tasks that still share a name (same key fields, other fields
differ) get ``-2``, ``-3``... in the order given. Two identical task specs are an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cellsearch.search.errors import FieldError, SpecError
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.spec import Budget, StudySpec, whole_as_int
from cellsearch.search.tasks import TASKS, TaskSpec

SUITE_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
STUDY_NAME_MAX = 63
_PLACEHOLDER = "suite-template"
_TASK_ADAPTER: TypeAdapter[Any] = TypeAdapter(TaskSpec)
SpecCheck = Callable[[StudySpec], list[FieldError]]
"""A check of a study spec that returns its errors (``SpecLimits.check`` is one)."""


class _SuiteShape(BaseModel):
    """The suite spec's own fields (tasks and template are checked one by one after)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=SUITE_NAME_PATTERN, description="Unique name: a-z, 0-9, '-'.")
    description: str = Field(default="", max_length=2000)
    tasks: list[Any] = Field(min_length=2, description="Task specs, two or more.")
    study: dict[str, Any] = Field(description="The study spec every task gets.")


@dataclass(frozen=True)
class SuitePlan:
    """A validated suite: its studies, one per task, in the order given."""

    name: str
    description: str
    labels: list[str]
    studies: list[StudySpec]

    def stored_spec(self) -> dict[str, Any]:
        """The suite spec as stored: tasks and template as validated, in JSON types."""
        template = self.studies[0].to_json()
        del template["name"], template["task"]
        return {
            "name": self.name,
            "description": self.description,
            "tasks": [s.to_json()["task"] for s in self.studies],
            "study": template,
        }


def slug(text: str) -> str:
    """``text`` in lower case with every run of other characters turned into one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def task_label(task: Any, dataset_names: Mapping[str, str] | None = None) -> str:
    """The readable name of one validated task spec (before cutting and numbering)."""
    kind = task.kind
    if kind in ("adding", "copy"):
        return f"{kind}-t{task.seq_len}"
    if kind == "digits":
        return f"digits-{task.mode}"
    if kind == "ucr":
        return slug(task.name)
    if kind == "forecast":
        return f"{task.name}-w{task.window}-h{task.horizon}"
    if kind == "chorales":
        return "chorales" if task.max_pieces is None else f"chorales-p{task.max_pieces}"
    if kind == "dataset":
        name = (dataset_names or {}).get(task.dataset_id)
        return slug(name) if name and slug(name) else f"dataset-{slug(task.dataset_id)[:12]}"
    return slug(kind)


def task_labels(
    tasks: Sequence[Any], *, max_length: int, dataset_names: Mapping[str, str] | None = None
) -> list[str]:
    """Unique, valid names of the suite's tasks (see the module docstring)."""
    bases = [task_label(t, dataset_names)[:max_length].strip("-") or "task" for t in tasks]
    labels: list[str] = []
    for base in bases:
        label, n = base, 1
        while label in labels:
            n += 1
            suffix = f"-{n}"
            label = base[: max_length - len(suffix)].strip("-") + suffix
        labels.append(label)
    return labels


def _shape_errors(exc: ValidationError) -> list[FieldError]:
    return [
        FieldError(tuple(e["loc"]), e["msg"].removeprefix("Value error, "), e["type"])
        for e in exc.errors()
    ]


def _task_errors(index: int, raw: Any, exc: ValidationError) -> list[FieldError]:
    """A task's validation errors under ``("tasks", index, ...)``, naming its kind."""
    kind = raw.get("kind") if isinstance(raw, dict) else None
    out = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        if loc and loc[0] in TASKS:  # the discriminator's tag: keep it in the message only
            kind, loc = loc[0], loc[1:]
        msg = e["msg"].removeprefix("Value error, ")
        named = f"task {index} ({kind or 'no kind'})"
        out.append(FieldError(("tasks", index, *loc), f"{named}: {msg}", e["type"]))
    return out


def _template_errors(study: dict[str, Any], checks: Sequence[SpecCheck]) -> list[FieldError]:
    """The template's own errors, checked once with a stand-in name and task."""
    errors = [
        FieldError(
            ("study", key),
            f"the suite names its studies and gives each its task: remove study.{key}",
            "extra_forbidden",
        )
        for key in ("name", "task")
        if key in study
    ]
    data = {**study, "name": _PLACEHOLDER, "task": {"kind": "adding"}}
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        return errors + [
            FieldError(("study", *e["loc"]), e["msg"].removeprefix("Value error, "), e["type"])
            for e in exc.errors()
            if e["loc"][:1] not in (("name",), ("task",))
        ]
    return errors + [
        FieldError(("study", *e.loc), e.msg, e.type)
        for check in checks
        for e in check(spec)
        if e.loc[:1] != ("task",)
    ]


def _task_check_errors(index: int, task: Any, checks: Sequence[SpecCheck]) -> list[FieldError]:
    """A task's errors found by ``checks`` (the template's are checked apart)."""
    spec = StudySpec(name=_PLACEHOLDER, task=task, budget=Budget(n_trials=1))
    return [
        FieldError(("tasks", index, *e.loc[1:]), f"task {index} ({task.kind}): {e.msg}", e.type)
        for check in checks
        for e in check(spec)
        if e.loc[:1] == ("task",)
    ]


def _duplicates(tasks: Sequence[tuple[int, Any]]) -> list[FieldError]:
    seen: dict[str, int] = {}
    out = []
    for index, task in tasks:
        key = task.model_dump_json()
        if key in seen:
            msg = f"task {index} ({task.kind}): the same task as task {seen[key]}"
            out.append(FieldError(("tasks", index), msg, "duplicate"))
        seen.setdefault(key, index)
    return out


def parse_suite(
    data: Any,
    *,
    limits: SpecLimits,
    max_tasks: int,
    dataset_names: Mapping[str, str] | None = None,
    checks: Sequence[SpecCheck] = (),
) -> SuitePlan:
    """Validate a suite spec and make the study spec of each task.

    Args:
        data: The suite spec, as parsed from JSON or YAML.
        limits: The server's limits, applied to every study.
        max_tasks: The most tasks a suite may have.
        dataset_names: Names of uploaded data sets by id (for readable task names).
        checks: More checks of a study spec, beside ``limits.check`` (the service's:
            uploaded data sets, precision). Each is run once on the template (its errors
            outside ``task`` count) and once per task (its errors inside ``task`` count).

    Raises:
        SpecError: listing every problem found (see the module docstring).
    """
    n_tasks = (
        len(data["tasks"]) if isinstance(data, dict) and isinstance(data.get("tasks"), list) else 0
    )
    if n_tasks > max_tasks:
        msg = f"{n_tasks} tasks exceed this server's limit max_suite_tasks={max_tasks}"
        raise SpecError([FieldError(("tasks",), msg, "limit_exceeded")])
    try:
        shape = _SuiteShape.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_shape_errors(exc)) from None
    all_checks = [limits.check, *checks]
    errors = _template_errors(shape.study, all_checks)
    valid: list[tuple[int, Any]] = []
    for index, raw in enumerate(shape.tasks):
        try:
            task = _TASK_ADAPTER.validate_python(whole_as_int(raw))
        except ValidationError as exc:
            errors += _task_errors(index, raw, exc)
            continue
        valid.append((index, task))
        errors += _task_check_errors(index, task, all_checks)
    errors += _duplicates(valid)
    if errors:
        raise SpecError(sorted(errors, key=_order))
    tasks = [task for _, task in valid]
    max_length = STUDY_NAME_MAX - len(shape.name) - 1
    labels = task_labels(tasks, max_length=max_length, dataset_names=dataset_names)
    studies = [
        StudySpec.model_validate({**shape.study, "name": f"{shape.name}-{label}", "task": task})
        for task, label in zip(tasks, labels, strict=True)
    ]
    return SuitePlan(shape.name, shape.description, labels, studies)


def _order(error: FieldError) -> tuple[int, int]:
    """Template errors first, then tasks by index."""
    if error.loc[:1] == ("tasks",) and len(error.loc) > 1 and isinstance(error.loc[1], int):
        return (1, error.loc[1])
    return (0, 0)
