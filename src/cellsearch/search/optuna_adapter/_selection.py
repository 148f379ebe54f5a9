"""Which trials of a study a read selects: a state and cell-type filter turned into SQL.

The cell-type filter follows :func:`cellsearch.search.record.cell_of`: a trial's sampled
``cell_type`` parameter (a categorical stored as the index of its choice, decoded here
through its distribution) wins; the ``cell_type`` user attribute counts only for a trial
without that parameter. Neither is a column, so the filter first groups the study's
trials by their stored cell parameter and attribute (a handful of distinct forms), decodes
each form once in Python, and then matches the stored forms that name the cell.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import Connection, and_, false, func, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FromClause

from cellsearch.search.optuna_adapter._tables import PARAMS, TRIALS, USER
from cellsearch.search.record import CELL_PARAM, Attr, cell_of

CELL_PARAM_ROW = PARAMS.alias("cell_param")
CELL_ATTR_ROW = USER.alias("cell_attr")
WITH_CELL = TRIALS.outerjoin(
    CELL_PARAM_ROW,
    and_(CELL_PARAM_ROW.c.trial_id == TRIALS.c.trial_id, CELL_PARAM_ROW.c.param_name == CELL_PARAM),
).outerjoin(
    CELL_ATTR_ROW,
    and_(
        CELL_ATTR_ROW.c.trial_id == TRIALS.c.trial_id, CELL_ATTR_ROW.c.key == Attr.CELL_TYPE.value
    ),
)  # unique (trial_id, param_name) and (trial_id, key): one row per trial


@dataclass(frozen=True)
class TrialFilter:
    """Which trials of a study to read: any of ``states`` (None: all) and one cell type."""

    states: Collection[TrialState] | None = None
    cell_type: str | None = None


ALL = TrialFilter()


@dataclass(frozen=True)
class Selection:
    """The trials that pass a filter: the tables to read them from, the conditions, and
    how many there are (when asked for)."""

    source: FromClause
    conditions: list[ColumnElement[bool]]
    total: int | None


def select_trials(conn: Connection, study_id: int, where: TrialFilter, *, count: bool) -> Selection:
    """Resolve ``where`` into SQL; the cell type through one grouped query (see
    :func:`cell_condition`), which also gives the count."""
    conditions: list[ColumnElement[bool]] = [TRIALS.c.study_id == study_id]
    if where.states is not None:
        conditions.append(TRIALS.c.state.in_(list(where.states)))
    if where.cell_type is not None:
        condition, total = cell_condition(conn, conditions, where.cell_type)
        return Selection(WITH_CELL, [*conditions, condition], total)
    counted = select(func.count()).select_from(TRIALS).where(*conditions)
    return Selection(TRIALS, conditions, int(conn.scalar(counted) or 0) if count else None)


def cell_condition(
    conn: Connection, conditions: list[ColumnElement[bool]], cell: str
) -> tuple[ColumnElement[bool], int]:
    """The trials whose :func:`~cellsearch.search.record.cell_of` is ``cell``, and how many.

    One grouped query over the trials (each joined with its cell parameter and its cell
    attribute: at most one of each) returns every distinct (stored distribution, stored
    value, stored attribute) with its count: a handful. Each is decoded and passed to
    :func:`~cellsearch.search.record.cell_of` itself; the condition then matches the
    stored forms of those that name ``cell`` exactly.
    """
    p, a = CELL_PARAM_ROW.c, CELL_ATTR_ROW.c
    groups = conn.execute(
        select(p.distribution_json, p.param_value, a.value_json, func.count())
        .select_from(WITH_CELL)
        .where(*conditions)
        .group_by(p.distribution_json, p.param_value, a.value_json)
    ).all()
    matched: list[ColumnElement[bool]] = []
    total = 0
    for distribution, internal, attr, n in groups:
        if _cell_of_stored(distribution, internal, attr) != cell:
            continue
        total += n
        if distribution is not None:  # the parameter decides, whatever the attribute
            matched.append(and_(p.distribution_json == distribution, p.param_value == internal))
        else:
            matched.append(and_(p.trial_id.is_(None), a.value_json == attr))
    return or_(false(), *matched), total


def _cell_of_stored(distribution: str | None, internal: float | None, attr: str | None) -> Any:
    """:func:`~cellsearch.search.record.cell_of` of a trial with these stored values."""
    params, attrs = {}, {}
    if distribution is not None and internal is not None:
        params[CELL_PARAM] = _decoded(distribution).to_external_repr(internal)
    if attr is not None:
        attrs[Attr.CELL_TYPE.value] = json.loads(attr)
    trial = FrozenTrial(
        number=0, state=TrialState.RUNNING, value=None, datetime_start=None,
        datetime_complete=None, params=params, distributions={}, user_attrs=attrs,
        system_attrs={}, intermediate_values={}, trial_id=0,
    )  # fmt: skip
    return cell_of(trial)


@functools.lru_cache(maxsize=256)
def _decoded(distribution_json: str) -> BaseDistribution:
    """A stored distribution, decoded (cached: a study holds a handful)."""
    return json_to_distribution(distribution_json)
