"""The three forms of a search-space parameter: fixed (a scalar), a choice list, a range.

A range is ``{low, high, log}``; ``log`` samples on a log scale. These forms are the
vocabulary of the study spec (:mod:`cellsearch.search.study.spec`) and of the table of
hyperparameters (:mod:`cellsearch.search.study.hyperparameters`), so they live apart from
both.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StrictModel(BaseModel):
    """A spec part: unknown keys refused, values frozen, no coercion, finite numbers."""

    # strict: no coercion ("5" is not a number, 1 is not true); finite: JSON may carry
    # NaN and Infinity, which no parameter accepts
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class IntRange(StrictModel):
    """An integer range; ``log`` samples on a log scale."""

    low: int = Field(ge=0)
    high: int = Field(ge=0)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_range(self.low, self.high, self.log)
        return self


class FloatRange(StrictModel):
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
Param = IntParam | FloatParam | ChoiceParam
"""Any hyperparameter's value in a spec."""


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
