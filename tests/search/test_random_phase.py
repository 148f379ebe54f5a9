"""The random phase of each cell type's search: its length, the kind of draw each claim
is, and the sampler that draws it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import optuna
import pytest

from cellsearch.search.errors import SpecError
from cellsearch.search.record import Attr, Draw, requeue_attrs
from cellsearch.search.study.allocation import CellConditionedSampler, balanced_cell
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.study.pruning import CellPruner
from cellsearch.search.study.sampling import (
    STARTUP_TRIALS,
    draw_attrs,
    make_pruner,
    make_sampler,
    random_rounds,
)
from cellsearch.search.study.spec import StudySpec
from tests.search.test_spec import spec_data

CELLS = ["lstm", "gru", "rnn_tanh"]


def _spec(n_trials: int, **changes: Any) -> StudySpec:
    data = spec_data(space={"cell_type": CELLS}, budget={"n_trials": n_trials, "max_epochs": 2})
    return parse_spec({**data, **changes})


@pytest.mark.parametrize(
    ("n_trials", "share", "rounds"),
    [
        (240, None, 16),  # a fifth of 80 per cell
        (230, None, 16),  # a fifth of 76, rounded up
        (240, 0.5, 40),
        (240, 0.0, STARTUP_TRIALS),  # never below the sampler's own start-up
        (240, 1.0, 80),  # random search
        (30, None, 10),  # 10 per cell: all of them
        (12, None, 4),  # never more than the cell type's budget
        (31, None, 10),  # the remainder trial is not a round
    ],
)
def test_random_rounds_follow_the_share_and_the_start_up(
    n_trials: int, share: float | None, rounds: int
) -> None:
    changes = {} if share is None else {"comparison": {"random_share": share}}
    assert random_rounds(_spec(n_trials, **changes)) == rounds


@pytest.mark.parametrize(
    "changes",
    [
        {"sampler": "random"},  # every draw is random already
        {"sampler": "qmc"},
        {"allocation": "adaptive"},  # the sampler chooses the cell type too
        {"space": {"cell_type": ["gru"]}},  # nothing to compare
    ],
)
def test_no_random_phase_where_draws_are_all_of_one_kind(changes: dict[str, Any]) -> None:
    spec = _spec(240, **changes)
    assert random_rounds(spec) is None
    assert draw_attrs(spec, 0) == {}


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half"])
def test_a_share_outside_zero_to_one_is_refused(bad: Any) -> None:
    with pytest.raises(SpecError, match=r"comparison\.random_share"):
        _spec(30, comparison={"random_share": bad})


def test_each_cell_types_first_rounds_are_random_draws() -> None:
    spec = _spec(240)  # 16 random rounds of 3 claims
    kinds = [draw_attrs(spec, index)[Attr.DRAW] for index in range(240)]
    assert kinds[: 16 * 3] == [Draw.RANDOM] * 48
    assert kinds[48:] == [Draw.ADAPTIVE] * (240 - 48)
    random_cells = Counter(balanced_cell(CELLS, spec.seed, i) for i in range(48))
    assert random_cells == {cell: 16 for cell in CELLS}  # the same number for every cell


def test_the_random_phase_outlasts_the_samplers_start_up() -> None:
    spec = _spec(240)
    random, tpe = optuna.samplers.RandomSampler, optuna.samplers.TPESampler
    # TPE's own 10 start-up rounds draw at random already (and as before the phase)
    for index, base in ((0, tpe), (29, tpe), (30, random), (47, random), (48, tpe), (239, tpe)):
        sampler = make_sampler(spec, index)
        assert isinstance(sampler, CellConditionedSampler)
        assert isinstance(sampler.base, base), index


def test_random_draws_are_spread_over_the_space_whatever_the_history() -> None:
    """A history that has found a good region pulls TPE's proposals there, not the
    random phase's."""
    spec = _spec(240, space={"cell_type": CELLS, "learning_rate": {"low": 1e-4, "high": 1e-1,
                                                                      "log": True}})  # fmt: skip
    study = optuna.create_study()
    for i in range(30):  # every cell type's history says: the lowest rates are best
        cell = balanced_cell(CELLS, spec.seed, i)
        lr = 1e-4 * (1.2 ** (i % 10))
        study.add_trial(optuna.trial.create_trial(
            params={"cell_type": cell, "learning_rate": lr}, value=lr,
            distributions={"cell_type": optuna.distributions.CategoricalDistribution(CELLS),
                           "learning_rate": optuna.distributions.FloatDistribution(
                               1e-4, 1e-1, log=True)},
        ))  # fmt: skip

    def rates(indices: range) -> list[float]:
        out = []
        for index in indices:
            study.sampler = make_sampler(spec, index)
            trial = study.ask()
            trial.suggest_categorical("cell_type", CELLS)
            out.append(trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return out

    random_draws, adaptive_draws = rates(range(30, 48)), rates(range(150, 168))
    above = sum(lr > 1e-2 for lr in random_draws)
    assert above >= 3  # a third of log-uniform draws lie above 1e-2 (6 of 18 expected)
    assert sum(lr > 1e-2 for lr in adaptive_draws) < above


def test_a_requeued_copy_repeats_the_same_kind_of_draw() -> None:
    attrs = requeue_attrs(7, {Attr.DRAW: Draw.ADAPTIVE, Attr.SEED: 3}, "stale")
    assert attrs == {Attr.DRAW: Draw.ADAPTIVE, Attr.RETRY_OF: 7, Attr.RETRY_REASON: "stale"}


@pytest.mark.parametrize(
    ("n_trials", "prune_random", "keep"),
    [
        (240, True, False),
        (240, False, True),
        (240, None, True),  # the default: adaptive trials to prune instead
        (30, None, False),  # every trial is a random draw: they are what is pruned
        (30, False, True),
    ],
)
def test_the_spec_says_whether_random_draws_may_be_pruned(
    n_trials: int, prune_random: bool | None, keep: bool
) -> None:
    spec = _spec(n_trials, pruner="hyperband", comparison={"prune_random": prune_random})
    pruner = make_pruner(spec)
    assert isinstance(pruner, CellPruner) and pruner.keep_random is keep


def test_no_random_phase_keeps_nothing_from_the_pruner() -> None:
    spec = _spec(240, pruner="hyperband", sampler="random", comparison={"prune_random": False})
    pruner = make_pruner(spec)
    assert isinstance(pruner, CellPruner) and not pruner.keep_random
