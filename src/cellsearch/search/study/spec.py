"""The study spec: what a user submits (JSON or YAML), validated by pydantic.

Every search-space parameter is fixed (a scalar), a choice list, or a range
``{low, high, log}`` (:mod:`cellsearch.search.study.param_forms`); the searched
hyperparameters are those of one table (:mod:`cellsearch.search.study.hyperparameters`),
from which :func:`space_model` builds the search space's fields. Cell-specific
parameters are written ``<cell>.<option>`` (for example ``lstm.forget_bias``) and are
sampled only in trials of that cell.
Server-side limits are checked separately (:mod:`cellsearch.search.study.limits`) so
that the same spec model serves the published JSON Schema and every deployment's limits.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Literal, cast

from pydantic import BaseModel, Field, create_model, field_validator, model_validator

from cellsearch.models import CELLS
from cellsearch.search.study.comparison import MIN_GAIN as MIN_GAIN  # re-exported
from cellsearch.search.study.comparison import RANDOM_SHARE as RANDOM_SHARE  # re-exported
from cellsearch.search.study.comparison import Comparison
from cellsearch.search.study.hyperparameters import (
    HYPERPARAMETERS,
    Hyperparameter,
    Kind,
    Table,
    in_use,
    solved,
)
from cellsearch.search.study.param_forms import (
    ChoiceParam,
    FloatParam,
    FloatRange,
    IntParam,
    IntRange,
    Param,
    StrictModel,
    choices,
)
from cellsearch.search.study.warm_start import DESCRIPTION as WARM_START_DOC
from cellsearch.search.study.warm_start import WarmStart, check_warm_start
from cellsearch.search.tasks import TaskSpec
from cellsearch.search.trial_config import Precision

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
TEXT_PATTERN = r"^[^\x00]*$"
"""Free text: anything but NUL (which PostgreSQL's text cannot hold)."""


class SearchSpaceBase(StrictModel):
    """What every search space has beside the entries of its table: the cell types, and
    the per-cell options (declared by :func:`space_model` after the table's fields, so
    that a spec keeps its order)."""

    table: ClassVar[Table] = ()
    """The hyperparameters this space declares a field for (see :func:`space_model`)."""

    cell_type: ChoiceParam = Field(
        default_factory=lambda: ["lstm", "gru", "rnn_tanh"],
        description="Registry names of the recurrent cells to compare (GET /cells).",
    )
    if TYPE_CHECKING:  # a field of every space model, after the table's (see space_model)
        cell_options: dict[str, dict[str, FloatParam]] = Field(default_factory=dict)

    def param(self, name: str) -> Param:
        """The value of the table's entry ``name`` (a fixed value, a choice list or a range)."""
        value: Param = getattr(self, name)
        return value

    @model_validator(mode="before")
    @classmethod
    def _collect_dotted(cls, data: Any) -> Any:
        """Move ``<cell>.<option>`` keys into ``cell_options``."""
        if not isinstance(data, dict) or not isinstance(data.get("cell_options", {}), dict):
            return data  # not a mapping: pydantic says what is wrong
        given = data.get("cell_options")
        out: dict[str, Any] = {}
        options: dict[str, Any] = {
            k: dict(v) if isinstance(v, dict) else v for k, v in (given or {}).items()
        }
        for key, value in data.items():
            if key == "cell_options":
                continue
            if "." in key:
                cell, _, option = key.partition(".")
                target = options.setdefault(cell, {})
                if not isinstance(target, dict):  # "lstm": 5 and "lstm.x": ... together
                    return data | {"cell_options": options}
                target[option] = value
            else:
                out[key] = value
        if options:
            out["cell_options"] = options
        return out

    @field_validator("cell_type")
    @classmethod
    def _known_cells(cls, value: ChoiceParam) -> ChoiceParam:
        cells = choices(value)
        if not cells:
            raise ValueError("give at least one cell type")
        unknown = [c for c in cells if c not in CELLS]
        if unknown:
            raise ValueError(
                f"unknown cell type {', '.join(map(repr, unknown))}; "
                f"valid names: {', '.join(CELLS)}"
            )
        if len(set(cells)) != len(cells):
            raise ValueError("each cell type may be listed once")
        return value

    @model_validator(mode="after")
    def _known_options(self) -> SearchSpaceBase:
        cells = choices(self.cell_type)
        for cell, opts in self.cell_options.items():
            if cell not in cells:
                raise ValueError(
                    f"{cell}.*: options given for cell {cell!r}, which is not in cell_type"
                )
            valid = [o.name for o in CELLS[cell].options]
            for name in opts:
                if name not in valid:
                    raise ValueError(
                        f"{cell}.{name}: unknown option of {cell}; "
                        f"valid: {', '.join(valid) or 'none'}"
                    )
        return self


_FORMS: dict[Kind, Any] = {"int": IntParam, "float": FloatParam, "choice": ChoiceParam}


def space_model(table: Table) -> type[SearchSpaceBase]:
    """The search-space model of ``table``: ``cell_type``, one field per entry (its kind's
    forms, its default and description, checked by :meth:`Hyperparameter.check`), then
    ``cell_options``."""
    fields: dict[str, Any] = {h.name: (_FORMS[h.kind], _field(h)) for h in table}
    fields["cell_options"] = (
        dict[str, dict[str, FloatParam]],
        Field(
            default_factory=dict,
            description="Per-cell parameters; in a spec write them as '<cell>.<option>' keys.",
        ),
    )
    checks = {f"_check_{h.name}": field_validator(h.name)(_checker(h)) for h in table}
    model = create_model(
        "SearchSpace",
        __base__=SearchSpaceBase,
        __doc__="Hyperparameters searched for every trial, plus per-cell options.",
        __module__=__name__,
        __validators__=checks,
        **fields,
    )
    model.table = tuple(table)
    return model


def _field(entry: Hyperparameter) -> Any:
    """The pydantic field of ``entry``. A list or range default is copied for each space
    (the JSON Schema then gives no default for it; a scalar's default it gives)."""
    default = entry.default
    if isinstance(default, list | BaseModel):
        return Field(default_factory=lambda: copy.deepcopy(default), description=entry.description)
    return Field(default=default, description=entry.description)


def _checker(entry: Hyperparameter) -> Callable[[Any, Any], Any]:
    """The field validator of ``entry`` (pydantic passes the class, then the value)."""

    def check(cls: Any, value: Any) -> Any:
        return entry.check(value)

    return check


# the search space of every study; type checkers see its base (the fields are the table's)
if TYPE_CHECKING:
    SearchSpace = SearchSpaceBase
else:
    SearchSpace = space_model(HYPERPARAMETERS)


def whole_as_int(value: Any) -> Any:
    """``value`` with every whole float, at any depth, made an int (JSON's 22.0 is 22)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_as_int(v) for v in value]
    return value


class Objective(StrictModel):
    """What the search optimises: the validation loss, or the task's own metric."""

    metric: Literal["val_loss", "val_metric"] = "val_loss"
    direction: Literal["minimize", "maximize"] = "minimize"

    @model_validator(mode="after")
    def _consistent(self) -> Objective:
        if self.metric == "val_loss" and self.direction != "minimize":
            raise ValueError("direction: val_loss can only be minimized")
        return self


class Budget(StrictModel):
    """How much work the study may do."""

    n_trials: int = Field(ge=1, description="Finished trials the study runs, exactly.")
    max_epochs: int = Field(default=20, ge=1, description="Epochs per trial at most.")
    max_trial_seconds: float | None = Field(
        default=None, gt=0, description="Wall-clock limit of one trial; it stops after the epoch."
    )


class Pruning(StrictModel):
    """How pruning treats cell types (the pruner itself is ``pruner``)."""

    min_complete_per_cell: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Never prune a trial of a cell type with fewer completed trials than "
        "this, so every cell type can be tested (0 disables).",
    )


class Reevaluate(StrictModel):
    """Seed re-evaluation: once the search budget is spent, the top ``top_k``
    configurations of each cell type are retrained from scratch with ``seeds`` fresh seeds."""

    top_k: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Configurations per cell type; at most the trials each cell type gets "
        "(budget.n_trials // cell types) under balanced allocation.",
    )
    seeds: int = Field(default=5, ge=2, le=50, description="Fresh seeds per configuration.")


class StudySpec(StrictModel):
    """A study: a task, a search space and a budget."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name: a-z, 0-9 and '-'.")
    description: str = Field(default="", max_length=2000, pattern=TEXT_PATTERN)
    task: TaskSpec
    space: SearchSpace = Field(default_factory=SearchSpace)
    param_budget: int | None = Field(
        default=None,
        ge=10,
        description="Solve the hidden size per cell so every cell has about this many parameters.",
    )
    allocation: Literal["balanced", "adaptive"] = Field(
        default="balanced",
        description="balanced: equal trials per cell type; adaptive: the sampler chooses.",
    )
    objective: Objective = Field(default_factory=Objective)
    budget: Budget
    sampler: Literal["tpe", "random", "gp", "qmc"] = "tpe"
    pruner: Literal["hyperband", "median", "successive_halving", "none"] = Field(
        default="hyperband",
        description="With allocation balanced, each cell type is pruned against its own "
        "trials only (its own rungs, brackets or median); adaptive prunes across cell types.",
    )
    pruning: Pruning = Field(default_factory=Pruning)
    comparison: Comparison = Field(default_factory=Comparison)
    reevaluate: Reevaluate | None = Field(
        default=None,
        description="Retrain the best configurations of each cell type with fresh seeds once "
        "the search is done; the verdict then rests on them (null: off). Search and "
        "re-evaluation trials together (n_trials + cell types x top_k x seeds) may not "
        "exceed the server's max_trials.",
    )
    precision: Precision = Field(
        default="fp32",
        description="bf16: the forward pass under bfloat16 autocast on CUDA workers (CPU "
        "workers train in fp32 and say so on the trial).",
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    warm_start: WarmStart | None = Field(default=None, description=WARM_START_DOC)
    _warm_start_fits = field_validator("warm_start")(check_warm_start)  # after what it reads

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        """JSON does not tell 22.0 from 22: a whole number is an integer wherever one is
        expected (strict validation otherwise refuses 22.0 for an int; "22" stays text)."""
        return whole_as_int(data)

    @model_validator(mode="before")
    @classmethod
    def _budget_or_size(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("space"), dict):
            for entry in solved(cls.space_table(), data.get("param_budget")):
                if entry.name in data["space"]:
                    raise ValueError(
                        f"param_budget: give either space.{entry.name} or param_budget, not both"
                    )
        return data

    @classmethod
    def space_table(cls) -> Table:
        """The hyperparameters of this model's search space."""
        return cast(type[SearchSpaceBase], cls.model_fields["space"].annotation).table

    def to_json(self) -> dict[str, Any]:
        """The spec as stored: JSON types, and none of what ``param_budget`` solves per cell."""
        names = {h.name for h in solved(self.space.table, self.param_budget)}
        return self.model_dump(mode="json", exclude={"space": names} if names else None)

    def space_params(self) -> dict[str, Param]:
        """The value of each hyperparameter of the table this spec uses, by name, in the
        table's order: a fixed value, a choice list or a range (what ``param_budget``
        solves per cell is left out)."""
        return {
            h.name: self.space.param(h.name) for h in in_use(self.space.table, self.param_budget)
        }

    @property
    def cell_types(self) -> list[str]:
        """The searched cell types, in the order given."""
        return choices(self.space.cell_type)

    def ranges(self) -> dict[str, tuple[float, float, bool]]:
        """The searched ranges as ``name -> (low, high, log)`` (cell options as
        ``<cell>.<option>``); fixed values and choice lists are not ranges."""
        space = self.space
        named: dict[str, Any] = dict(self.space_params())
        for cell, options in space.cell_options.items():
            named.update({f"{cell}.{name}": param for name, param in options.items()})
        return {
            name: (float(p.low), float(p.high), p.log)
            for name, p in named.items()
            if isinstance(p, IntRange | FloatRange)
        }

    @property
    def trials_per_cell(self) -> int:
        """Search trials each cell type gets under balanced allocation (at least 1)."""
        return max(1, self.budget.n_trials // len(self.cell_types))

    @property
    def max_reevaluations(self) -> int:
        """The most re-evaluation trials the study can run (fewer when a cell type has
        fewer completed trials than ``top_k``)."""
        if self.reevaluate is None:
            return 0
        return len(self.cell_types) * self.reevaluate.top_k * self.reevaluate.seeds

    @model_validator(mode="after")
    def _budget_holds_the_reevaluation(self) -> StudySpec:
        per_cell = self.budget.n_trials // len(self.cell_types)
        top_k = 0 if self.reevaluate is None else self.reevaluate.top_k
        if self.allocation == "balanced" and top_k > max(per_cell, 1):
            raise ValueError(
                f"reevaluate.top_k: {top_k} exceeds the {per_cell} trials "
                f"each of the {len(self.cell_types)} cell types gets from budget.n_trials"
            )
        return self


def spec_model(table: Table) -> type[StudySpec]:
    """A study-spec model like :class:`StudySpec` whose search space declares ``table``'s
    entries (a table other than the default one, in tests); every reader of the table
    takes it from the spec (``spec.space.table``)."""
    space = space_model(table)
    return create_model(
        "StudySpec",
        __base__=StudySpec,
        __doc__=StudySpec.__doc__,
        __module__=__name__,
        space=(space, Field(default_factory=space)),
    )
