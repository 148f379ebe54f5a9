"""Trials of many studies counted in one grouped query, for the service's progress counts.

The service counts each study's trials by state, failure kind, cell type and whether a
trial is a seed re-evaluation run. Reading every trial for that would cost a page of
studies as much as their trials; instead one query over Optuna's ``trials`` (joined with
``studies`` and three of each trial's user attributes) returns one row per distinct
combination with its count. What counts as what is the service's rule
(:class:`cellsearch.service.studies.operations.TrialCounts`); this module only reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.trial import TrialState
from sqlalchemy import Connection, and_, func, select

from cellsearch.search.optuna_adapter._tables import STUDIES, TRIALS, USER
from cellsearch.search.record import Attr


@dataclass(frozen=True)
class TrialGroup:
    """Trials of one study alike in what the counts tell apart, and how many there are.

    Attributes:
        study_name: The Optuna study's name.
        state: Their state.
        failure_kind: Their ``failure_kind`` attribute, decoded (None: unset).
        cell_type: Their ``cell_type`` attribute, decoded (None: unset).
        reevaluation: Whether they are seed re-evaluation runs (``reevaluation_of`` set).
        n: How many trials.
    """

    study_name: str
    state: TrialState
    failure_kind: Any
    cell_type: Any
    reevaluation: bool
    n: int


def trial_groups(conn: Connection, names: Sequence[str]) -> list[TrialGroup]:
    """The trials of the named Optuna studies in groups (one grouped query; a name with no
    study, or a study with no trial, has no group)."""
    if not names:
        return []
    t = TRIALS.c
    kind, cell, rerun = USER.alias("k"), USER.alias("c"), USER.alias("r")

    def attr(row: Any, key: str) -> Any:
        return and_(row.c.trial_id == t.trial_id, row.c.key == key)

    reevaluation = rerun.c.trial_id.is_not(None)  # no parameter: the same SQL in GROUP BY
    query = (
        select(STUDIES.c.study_name, t.state, kind.c.value_json, cell.c.value_json)
        .add_columns(reevaluation, func.count())
        .select_from(TRIALS)
        .join(STUDIES, STUDIES.c.study_id == t.study_id)
        .outerjoin(kind, attr(kind, Attr.FAILURE_KIND.value))
        .outerjoin(cell, attr(cell, Attr.CELL_TYPE.value))
        .outerjoin(rerun, attr(rerun, Attr.REEVALUATION_OF.value))
        .where(STUDIES.c.study_name.in_(list(names)))
        .group_by(STUDIES.c.study_name, t.state, kind.c.value_json, cell.c.value_json)
        .group_by(reevaluation)
    )
    return [
        TrialGroup(name, state, _decoded(failure), _decoded(cell_type), bool(again), n)
        for name, state, failure, cell_type, again, n in conn.execute(query)
    ]


def _decoded(value_json: str | None) -> Any:
    return None if value_json is None else json.loads(value_json)
