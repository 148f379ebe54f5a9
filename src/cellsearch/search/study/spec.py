"""The study spec: what a user submits (JSON or YAML), validated by pydantic.

Every search-space parameter is fixed (a scalar), a choice list, or a range
``{low, high, log}``. Cell-specific parameters are written ``<cell>.<option>``
(for example ``lstm.forget_bias``) and are sampled only in trials of that cell.
Server-side limits are checked separately (:mod:`cellsearch.search.study.limits`) so
that the same spec model serves the published JSON Schema and every deployment's limits.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cellsearch.models import CELLS
from cellsearch.search.tasks import TaskSpec
from cellsearch.search.trial_config import OPTIMIZERS, Precision

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
TEXT_PATTERN = r"^[^\x00]*$"
"""Free text: anything but NUL (which PostgreSQL's text cannot hold)."""
RANDOM_SHARE = 0.2
"""Default share of each cell type's trials drawn at random (``comparison.random_share``)."""


class _Strict(BaseModel):
    # strict: no coercion ("5" is not a number, 1 is not true); finite: JSON may carry
    # NaN and Infinity, which no parameter accepts
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class IntRange(_Strict):
    """An integer range; ``log`` samples on a log scale."""

    low: int = Field(ge=0)
    high: int = Field(ge=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log)
        return self


class FloatRange(_Strict):
    """A real range; ``log`` samples on a log scale (both bounds must then be > 0)."""

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        _check_range(self.low, self.high, self.log)
        return self


def _check_range(low: float, high: float, log: bool) -> None:
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if log and low <= 0:
        raise ValueError(f"a log range needs low > 0, got {low}")


IntParam = int | list[int] | IntRange
FloatParam = float | list[float] | FloatRange
ChoiceParam = str | list[str]


def upper_bound(param: IntParam | FloatParam) -> float:
    """The largest value a parameter can take."""
    if isinstance(param, IntRange | FloatRange):
        return param.high
    if isinstance(param, list):
        return max(param)
    return param


def lower_bound(param: IntParam | FloatParam) -> float:
    """The smallest value a parameter can take."""
    if isinstance(param, IntRange | FloatRange):
        return param.low
    if isinstance(param, list):
        return min(param)
    return param


def choices(param: ChoiceParam) -> list[str]:
    """The values of a categorical parameter (a scalar is a one-element list)."""
    return list(param) if isinstance(param, list) else [param]


class SearchSpace(_Strict):
    """Hyperparameters searched for every trial, plus per-cell options."""

    cell_type: ChoiceParam = Field(
        default_factory=lambda: ["lstm", "gru", "rnn_tanh"],
        description="Registry names of the recurrent cells to compare (GET /cells).",
    )
    hidden_size: IntParam = Field(
        default_factory=lambda: IntRange(low=16, high=256, log=True),
        description="Hidden units per layer. Ignored (solved per cell) when param_budget is set.",
    )
    num_layers: IntParam = Field(default=1, description="Stacked recurrent layers.")
    learning_rate: FloatParam = Field(
        default_factory=lambda: FloatRange(low=1e-4, high=1e-1, log=True),
        description="Optimizer learning rate.",
    )
    batch_size: IntParam = Field(default_factory=lambda: [32, 64, 128])
    dropout: FloatParam = Field(default=0.0, description="Dropout between stacked layers.")
    optimizer: ChoiceParam = Field(default="adam", description=f"One of {', '.join(OPTIMIZERS)}.")
    weight_decay: FloatParam = 0.0
    grad_clip: FloatParam = Field(default=1.0, description="Gradient-norm clip; 0 disables it.")
    cell_options: dict[str, dict[str, FloatParam]] = Field(
        default_factory=dict,
        description="Per-cell parameters; in a spec write them as '<cell>.<option>' keys.",
    )

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

    @field_validator("optimizer")
    @classmethod
    def _known_optimizers(cls, value: ChoiceParam) -> ChoiceParam:
        bad = [o for o in choices(value) if o not in OPTIMIZERS]
        if bad or not choices(value):
            raise ValueError(f"unknown optimizer {bad}; valid: {', '.join(OPTIMIZERS)}")
        return value

    @field_validator("hidden_size", "num_layers", "batch_size")
    @classmethod
    def _positive_int(cls, value: IntParam) -> IntParam:
        _non_empty(value)
        if lower_bound(value) < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("learning_rate")
    @classmethod
    def _positive(cls, value: FloatParam) -> FloatParam:
        _non_empty(value)
        if lower_bound(value) <= 0:
            raise ValueError("must be > 0")
        return value

    @field_validator("dropout")
    @classmethod
    def _fraction(cls, value: FloatParam) -> FloatParam:
        _non_empty(value)
        if not 0 <= lower_bound(value) <= upper_bound(value) < 1:
            raise ValueError("must lie in [0, 1)")
        return value

    @field_validator("weight_decay", "grad_clip")
    @classmethod
    def _non_negative(cls, value: FloatParam) -> FloatParam:
        _non_empty(value)
        if lower_bound(value) < 0:
            raise ValueError("must be >= 0")
        return value

    @model_validator(mode="after")
    def _known_options(self) -> SearchSpace:
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


def whole_as_int(value: Any) -> Any:
    """``value`` with every whole float, at any depth, made an int (JSON's 22.0 is 22)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_as_int(v) for v in value]
    return value


def _non_empty(value: IntParam | FloatParam) -> None:
    if isinstance(value, list) and not value:
        raise ValueError("a choice list must not be empty")


class Objective(_Strict):
    """What the search optimises: the validation loss, or the task's own metric."""

    metric: Literal["val_loss", "val_metric"] = "val_loss"
    direction: Literal["minimize", "maximize"] = "minimize"

    @model_validator(mode="after")
    def _consistent(self) -> Objective:
        if self.metric == "val_loss" and self.direction != "minimize":
            raise ValueError("direction: val_loss can only be minimized")
        return self


class Budget(_Strict):
    """How much work the study may do."""

    n_trials: int = Field(ge=1, description="Finished trials the study runs, exactly.")
    max_epochs: int = Field(default=20, ge=1, description="Epochs per trial at most.")
    max_trial_seconds: float | None = Field(
        default=None, gt=0, description="Wall-clock limit of one trial; it stops after the epoch."
    )


class Pruning(_Strict):
    """How pruning treats cell types (the pruner itself is ``pruner``)."""

    min_complete_per_cell: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Never prune a trial of a cell type with fewer completed trials than "
        "this, so every cell type can be tested (0 disables).",
    )


class Comparison(_Strict):
    """Where the comparison between cell types takes its evidence from."""

    random_share: float = Field(
        default=RANDOM_SHARE,
        ge=0.0,
        le=1.0,
        description="Share of each cell type's trials drawn at random from the search space "
        "(at least the sampler's 10 start-up trials) before an adaptive sampler (tpe, gp) "
        "takes over; the tests between cell types use these draws, which are independent "
        "of each other (an adaptive sampler's later draws depend on the earlier ones and "
        "would make the tests too confident). 1: random search. Balanced allocation only.",
    )
    prune_random: bool | None = Field(
        default=None,
        description="Whether the pruner may stop random draws. A pruned draw counts as a "
        "failure, so pruning them costs the tests most of their power. null (the default): "
        "random draws train to the end when the study has adaptive trials to prune, and are "
        "pruned when they are all the study has (up to 10 trials per cell type).",
    )


class Reevaluate(_Strict):
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


class StudySpec(_Strict):
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

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        """JSON does not tell 22.0 from 22: a whole number is an integer wherever one is
        expected (strict validation otherwise refuses 22.0 for an int; "22" stays text)."""
        return whole_as_int(data)

    @model_validator(mode="before")
    @classmethod
    def _budget_or_size(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("param_budget") is not None:
            space = data.get("space")
            if isinstance(space, dict) and "hidden_size" in space:
                raise ValueError(
                    "param_budget: give either space.hidden_size or param_budget, not both"
                )
        return data

    def to_json(self) -> dict[str, Any]:
        """The spec as stored: JSON types, and no hidden size when it is solved per cell."""
        exclude = {"space": {"hidden_size"}} if self.param_budget is not None else None
        return self.model_dump(mode="json", exclude=exclude)

    @property
    def cell_types(self) -> list[str]:
        """The searched cell types, in the order given."""
        return choices(self.space.cell_type)

    def ranges(self) -> dict[str, tuple[float, float, bool]]:
        """The searched ranges as ``name -> (low, high, log)`` (cell options as
        ``<cell>.<option>``); fixed values and choice lists are not ranges."""
        space = self.space
        named: dict[str, Any] = {
            "hidden_size": None if self.param_budget is not None else space.hidden_size,
            "num_layers": space.num_layers,
            "learning_rate": space.learning_rate,
            "batch_size": space.batch_size,
            "dropout": space.dropout,
            "weight_decay": space.weight_decay,
            "grad_clip": space.grad_clip,
        }
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
