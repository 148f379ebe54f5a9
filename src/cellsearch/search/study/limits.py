"""A deployment's bounds on a study spec, and parsing a submitted spec under them.

:class:`SpecLimits` is the one place that names each limit, its default and its meaning;
the service's settings inherit it (so each limit is a ``CELLSEARCH_MAX_...`` variable)
rather than repeating it. Which limit bounds a searched hyperparameter is said by its entry
in the table of hyperparameters (:mod:`cellsearch.search.study.hyperparameters`).
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cellsearch.search.errors import FieldError, SpecError
from cellsearch.search.study.hyperparameters import in_use
from cellsearch.search.study.param_forms import FloatParam, IntParam, upper_bound
from cellsearch.search.study.spec import StudySpec

Number = IntParam | FloatParam


class SpecLimits(BaseModel):
    """Server-side bounds on a spec; a deployment sets them (see the service's settings)."""

    model_config = ConfigDict(frozen=True)

    max_hidden_size: int = Field(default=1024, ge=1, description="Largest hidden size searched.")
    max_num_layers: int = Field(default=4, ge=1, description="Most stacked recurrent layers.")
    max_epochs: int = Field(default=1000, ge=1, description="Most epochs per trial.")
    max_seq_len: int = Field(default=5000, ge=1, description="Longest input sequence of a task.")
    max_trials: int = Field(default=10000, ge=1, description="Most trials per study.")
    max_dataset_size: int = Field(default=1_000_000, ge=1, description="Most sequences per task.")
    max_batch_size: int = Field(default=4096, ge=1, description="Largest batch size searched.")
    max_param_budget: int = Field(default=50_000_000, ge=10, description="Largest param_budget.")
    max_trial_seconds: float = Field(
        default=86400.0, gt=0, description="Longest max_trial_seconds."
    )
    max_choices: int = Field(default=100, ge=1, description="Longest choice list of a parameter.")
    max_features: int = Field(
        default=1024, ge=1, description="Most input features per step of a data set."
    )

    def check(self, spec: StudySpec) -> list[FieldError]:
        """One error per field of ``spec`` that exceeds these limits."""
        task = spec.task
        checks: list[tuple[tuple[str, ...], float | None, str]] = [
            (("space", h.name), upper_bound(cast(Number, spec.space.param(h.name))), h.limit)
            for h in in_use(spec.space.table, spec.param_budget)
            if h.limit is not None  # only a number has one
        ]
        checks += [
            (("budget", "max_epochs"), spec.budget.max_epochs, "max_epochs"),
            (("budget", "n_trials"), spec.budget.n_trials, "max_trials"),
            (("budget", "max_trial_seconds"), spec.budget.max_trial_seconds, "max_trial_seconds"),
            (("task", "seq_len"), task.sequence_length(), "max_seq_len"),
            (("task",), task.dataset_size(), "max_dataset_size"),
            (("param_budget",), spec.param_budget, "max_param_budget"),
            (("reevaluate",), _with_reevaluations(spec), "max_trials"),
        ]
        errors = self._check_choices(spec)
        for loc, value, setting in checks:
            limit = getattr(self, setting)
            if value is not None and value > limit:
                what = _number(value)
                if loc == ("reevaluate",):
                    what = (f"n_trials + cell types x top_k x seeds = {spec.budget.n_trials} + "
                            f"{spec.max_reevaluations} = {value:g}")  # fmt: skip
                errors.append(
                    FieldError(
                        loc=loc,
                        msg=f"{what} exceeds this server's limit {setting}={limit:g}",
                        type="limit_exceeded",
                    )
                )
        return errors

    def _check_choices(self, spec: StudySpec) -> list[FieldError]:
        """One error per choice list longer than ``max_choices``."""
        space = spec.space
        params: list[tuple[tuple[str, ...], object]] = [
            (("space", name), getattr(space, name))
            for name in type(space).model_fields
            if name != "cell_options"
        ]
        params += [
            (("space", f"{cell}.{option}"), value)
            for cell, options in space.cell_options.items()
            for option, value in options.items()
        ]
        return [
            FieldError(
                loc=loc,
                msg=f"{len(value)} choices exceed this server's limit "
                f"max_choices={self.max_choices}",
                type="limit_exceeded",
            )
            for loc, value in params
            if isinstance(value, list) and len(value) > self.max_choices
        ]


def _number(value: float) -> str:
    """A value for a message (an integer may be beyond the range of a float)."""
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"a number of {len(str(abs(value)))} digits"
    return f"{value:g}"


def _with_reevaluations(spec: StudySpec) -> int | None:
    """Search and re-evaluation trials together, when the study re-evaluates."""
    return None if spec.reevaluate is None else spec.budget.n_trials + spec.max_reevaluations


def parse_spec(data: Any, limits: SpecLimits | None = None) -> StudySpec:
    """Validate a spec (a mapping from JSON or YAML) and enforce ``limits`` (default ones).

    Raises:
        SpecError: listing every invalid field with its reason.
    """
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(
            [
                FieldError(tuple(e["loc"]), e["msg"].removeprefix("Value error, "), e["type"])
                for e in exc.errors()
            ]
        ) from None
    errors = (limits or SpecLimits()).check(spec)
    if errors:
        raise SpecError(errors)
    return spec
