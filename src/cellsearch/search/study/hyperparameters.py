"""The searched hyperparameters, declared once: one table that every reader takes them from.

Each :class:`Hyperparameter` says what the spec, its published JSON Schema, the limits
check, the sampler and the report need to know of one parameter: its kind (which also
says how it is suggested), default, bounds, description, the server limit on it, its
place among a trial's draws, and whether a parameter budget solves it per cell.

- The spec model's fields and their checks: :func:`cellsearch.search.study.spec.space_model`.
- The published schema: :mod:`cellsearch.service.studies.spec_schema`.
- The limits check: :meth:`cellsearch.search.study.limits.SpecLimits.check`.
- The sampler: :func:`cellsearch.search.trial.space.suggest_config`.
- What a person reads: :func:`cellsearch.search.report.details.fixed_params`,
  :func:`cellsearch.service.studies.labels.readable_spec`, ``StudySpec.ranges``.

The cell type and the per-cell options are not entries. The cell type is drawn before
everything else and recorded even when fixed (every trial is grouped by it), its names
are the cell catalog's and may not repeat, and it decides the allocation. The options
are a mapping per cell whose names, bounds and defaults come from the cell catalog
(:class:`cellsearch.models.CellOption`), not from this table. Both are declared beside
it, in the spec model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cellsearch.search.study.param_forms import (
    FloatRange,
    IntRange,
    Param,
    choices,
    lower_bound,
    upper_bound,
)
from cellsearch.search.trial_config import OPTIMIZERS

Kind = Literal["int", "float", "choice"]
"""How a parameter is written and suggested. ``int`` and ``float``: fixed (a scalar, not
recorded as a trial parameter), a choice list (suggested as a categorical) or a range
(``suggest_int``/``suggest_float`` with its ``log``). ``choice``: a name or a list of names,
always suggested as a categorical (a single name too, so every trial records it)."""

LAST_DRAW = 1000
"""The draw of an entry that does not give one: after every other."""
CELL_OPTIONS_DRAW = 3
"""Where the chosen cell's options are drawn among the entries' draws."""


@dataclass(frozen=True)
class Bounds:
    """The values an ``int`` or ``float`` parameter may take, in every one of its forms.

    Attributes:
        low: The smallest value allowed (None: no lower bound).
        low_open: ``low`` itself is not allowed.
        below: Every value must be smaller than this (None: no upper bound).
    """

    low: float | None = None
    low_open: bool = False
    below: float | None = None

    def holds(self, param: Any) -> bool:
        """Whether every value ``param`` can take is allowed (a list must not be empty)."""
        least, most = lower_bound(param), upper_bound(param)
        if self.low is not None and (least <= self.low if self.low_open else least < self.low):
            return False
        return self.below is None or most < self.below

    def rule(self, kind: Kind) -> str:
        """The bound in words, as the 422 gives it ("must be at least 1")."""
        if self.below is not None:
            if self.low is None:
                return f"must be < {self.below:g}"
            return f"must lie in {'(' if self.low_open else '['}{self.low:g}, {self.below:g})"
        if self.low_open:
            return f"must be > {self.low:g}"
        return f"must be at least {self.low:g}" if kind == "int" else f"must be >= {self.low:g}"

    def schema(self) -> dict[str, float]:
        """The bound in JSON Schema keywords."""
        out: dict[str, float] = {}
        if self.low is not None:
            out["exclusiveMinimum" if self.low_open else "minimum"] = self.low
        if self.below is not None:
            out["exclusiveMaximum"] = self.below
        return out

    @property
    def positive(self) -> bool:
        """Whether the bound already keeps every value above 0 (a log range needs that)."""
        return self.low is not None and (self.low > 0 or (self.low == 0 and self.low_open))


@dataclass(frozen=True)
class Hyperparameter:
    """One searched hyperparameter of every trial.

    Attributes:
        name: Its key in a spec's ``space`` and its name as a trial parameter.
        kind: ``int``, ``float`` or ``choice`` (see :data:`Kind`).
        default: Its value when a spec leaves it out (any of its kind's forms).
        description: What it is (the JSON Schema's description); None for none.
        bounds: The values an ``int`` or ``float`` may take.
        values: The names a ``choice`` may take.
        limit: The :class:`~cellsearch.search.study.limits.SpecLimits` field that bounds
            its largest value on a server (None: no server limit).
        draw: Its place among a trial's suggestions, after the cell type (see
            :data:`CELL_OPTIONS_DRAW`): a seeded study draws the same values only while
            every entry keeps its place, so a new entry comes after the others.
        solved_by_budget: A spec's ``param_budget`` takes its place (solved per cell),
            so a spec may not give both.
    """

    name: str
    kind: Kind
    default: Param = field(hash=False)  # a list is not hashable
    description: str | None = None
    bounds: Bounds = field(default_factory=Bounds)
    values: tuple[str, ...] = ()
    limit: str | None = None
    draw: int = LAST_DRAW
    solved_by_budget: bool = False

    def __post_init__(self) -> None:
        if self.kind == "choice" and (self.limit is not None or self.bounds != Bounds()):
            raise ValueError(f"{self.name}: a choice has names, neither bounds nor a limit")
        if self.kind != "choice" and self.values:
            raise ValueError(f"{self.name}: only a choice has names")

    def check(self, value: Any) -> Any:
        """``value`` if it obeys this entry's bounds or names.

        Raises:
            ValueError: saying which rule it breaks (pydantic reports it on the field).
        """
        if self.kind == "choice":
            bad = [v for v in choices(value) if v not in self.values]
            if bad or not choices(value):
                raise ValueError(f"unknown {self.name} {bad}; valid: {', '.join(self.values)}")
            return value
        if isinstance(value, list) and not value:
            raise ValueError("a choice list must not be empty")
        if not self.bounds.holds(value):
            raise ValueError(self.bounds.rule(self.kind))
        return value


Table = tuple[Hyperparameter, ...]

POSITIVE_INT = Bounds(low=1)
HYPERPARAMETERS: Table = (
    Hyperparameter(
        name="hidden_size",
        kind="int",
        default=IntRange(low=16, high=256, log=True),
        description="Hidden units per layer. Ignored (solved per cell) when param_budget is set.",
        bounds=POSITIVE_INT,
        limit="max_hidden_size",
        draw=2,
        solved_by_budget=True,
    ),
    Hyperparameter(
        name="num_layers",
        kind="int",
        default=1,
        description="Stacked recurrent layers.",
        bounds=POSITIVE_INT,
        limit="max_num_layers",
        draw=1,
    ),
    Hyperparameter(
        name="learning_rate",
        kind="float",
        default=FloatRange(low=1e-4, high=1e-1, log=True),
        description="Optimizer learning rate.",
        bounds=Bounds(low=0, low_open=True),
        draw=4,
    ),
    Hyperparameter(
        name="batch_size",
        kind="int",
        default=[32, 64, 128],
        bounds=POSITIVE_INT,
        limit="max_batch_size",
        draw=5,
    ),
    Hyperparameter(
        name="dropout",
        kind="float",
        default=0.0,
        description="Dropout between stacked layers.",
        bounds=Bounds(low=0, below=1),
        draw=6,
    ),
    Hyperparameter(
        name="optimizer",
        kind="choice",
        default="adam",
        description=f"One of {', '.join(OPTIMIZERS)}.",
        values=OPTIMIZERS,
        draw=7,
    ),
    Hyperparameter(name="weight_decay", kind="float", default=0.0, bounds=Bounds(low=0), draw=8),
    Hyperparameter(
        name="grad_clip",
        kind="float",
        default=1.0,
        description="Gradient-norm clip; 0 disables it.",
        bounds=Bounds(low=0),
        draw=9,
    ),
)
"""Every searched hyperparameter but the cell type and the per-cell options, in the
order a spec lists them."""


def solved(table: Sequence[Hyperparameter], param_budget: int | None) -> Table:
    """The entries of ``table`` that ``param_budget`` takes the place of: none without a
    budget, the hidden size (solved per cell) with one. A spec may not give them too."""
    if param_budget is None:
        return ()
    return tuple(h for h in table if h.solved_by_budget)


def in_use(table: Sequence[Hyperparameter], param_budget: int | None) -> Table:
    """The entries a spec with ``param_budget`` gives values for: all of ``table`` but
    those the budget takes the place of (:func:`solved`)."""
    replaced = solved(table, param_budget)
    return tuple(h for h in table if h not in replaced)


def draw_order(table: Sequence[Hyperparameter]) -> Table:
    """``table`` in the order a trial draws its entries (ties in the table's order)."""
    return tuple(sorted(table, key=lambda h: h.draw))
