"""A warm start: its spec, which earlier trials may seed a study, and who sees the seeds.

The seeds reach only the adaptive draws' sampler, of their own cell type: never a random
draw (the tests' draws stay independent of everything), never the pruner, never the
study's trials. Fed to TPE they steer its proposals from the first adaptive draw on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from cellsearch.search.errors import SpecError
from cellsearch.search.optuna_adapter import cell_view
from cellsearch.search.record import Attr, Draw, reevaluation_attrs
from cellsearch.search.report import warm
from cellsearch.search.study import seeding
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.study.sampling import draw_attrs, make_sampler, shown_seeds, warm_attrs
from cellsearch.search.study.spec import StudySpec
from cellsearch.search.trial.space import suggest_config
from tests.search.test_spec import errors_of, spec_data

CELLS = ["lstm", "gru"]
SPACE = {
    "cell_type": CELLS,
    "hidden_size": {"low": 4, "high": 16},
    "lstm.forget_bias": {"low": 0, "high": 2},
}


def warm_spec(n_trials: int = 60, **changes: Any) -> StudySpec:
    """A balanced TPE study: 30 trials a cell, the first 10 random draws."""
    data = spec_data(name="warm", space=SPACE, budget={"n_trials": n_trials, "max_epochs": 2})
    return parse_spec({**data, "warm_start": {"from": ["cold"], "top_k": 5}, **changes})


def source_trials(spec: StudySpec, n: int, seed: int = 0, **attrs: Any) -> list[FrozenTrial]:
    """``n`` completed trials of each cell type in ``spec``'s space; the value grows with the
    distance of the learning rate from 1e-2 (so the best trials have it near there)."""
    rng = np.random.default_rng(seed)
    trials = []
    for cell in spec.cell_types:
        space = seeding.cell_distributions(spec, cell)
        for _ in range(n):
            params = {name: _draw(rng, d) for name, d in space.items()}
            params["cell_type"] = cell
            value = abs(math.log10(params["learning_rate"]) + 2) + 0.01 * rng.random()
            trials.append(
                optuna.trial.create_trial(
                    params=params, distributions=space, value=value,
                    user_attrs={Attr.CELL_TYPE: cell, **attrs},
                )
            )  # fmt: skip
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


def _draw(rng: np.random.Generator, distribution: Any) -> Any:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return distribution.choices[int(rng.integers(len(distribution.choices)))]
    if isinstance(distribution, optuna.distributions.IntDistribution):
        return int(rng.integers(distribution.low, distribution.high + 1))
    low, high = distribution.low, distribution.high
    if distribution.log:
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return float(rng.uniform(low, high))


def seeds_for(spec: StudySpec, trials: list[FrozenTrial]) -> seeding.WarmSeeds:
    source = parse_spec({**spec.to_json(), "name": "cold", "warm_start": None})
    return seeding.choose(spec, [seeding.Source("cold", source, trials)])


# --- the spec -----------------------------------------------------------------------------


def test_the_spec_part_round_trips_as_written() -> None:
    spec = warm_spec()
    assert spec.warm_start is not None and spec.warm_start.from_ == ["cold"]
    stored = spec.to_json()
    assert stored["warm_start"] == {"from": ["cold"], "top_k": 5}
    assert StudySpec.model_validate(stored) == spec
    schema = StudySpec.model_json_schema()["$defs"]["WarmStart"]
    assert set(schema["properties"]) == {"from", "top_k"}
    assert schema["properties"]["from"]["uniqueItems"] is True


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"warm_start": {"from": ["warm"]}}, "from itself"),
        ({"warm_start": {"from": ["a", "a"]}}, "once"),
        ({"warm_start": {"from": []}}, "at least 1"),
        ({"warm_start": {"from": ["a"], "top_k": 0}}, "greater than or equal to 1"),
        ({"warm_start": {"from": ["a"]}, "sampler": "random"}, "tpe or gp"),
        ({"warm_start": {"from": ["a"]}, "sampler": "qmc"}, "tpe or gp"),
        ({"warm_start": {"from": ["a"]}, "allocation": "adaptive"}, "balanced"),
    ],
)
def test_what_the_spec_alone_decides_is_a_422_naming_warm_start(
    changes: dict[str, Any], words: str
) -> None:
    data = {**spec_data(name="warm", space=SPACE, budget={"n_trials": 60}), **changes}
    found = errors_of(data)
    assert [loc[0] for loc, _ in found] == ["warm_start"]
    assert words in found[0][1]


def test_one_cell_type_may_warm_start_under_either_allocation() -> None:
    for allocation in ("balanced", "adaptive"):
        spec = warm_spec(allocation=allocation, space={"cell_type": ["gru"]})
        assert seeding.phase_problem(spec) is None  # no random phase: every draw is seeded


# --- which trials seed a study ------------------------------------------------------------


def test_suggestions_sample_the_distributions_seeds_are_given() -> None:
    spec = parse_spec(
        spec_data(
            space={**SPACE, "batch_size": [16, 32], "dropout": {"low": 0.0, "high": 0.5},
                   "num_layers": [1, 2], "optimizer": ["adam", "sgd"]},
            param_budget=None,
        )
    )  # fmt: skip
    budgeted = parse_spec(spec_data(space={"cell_type": CELLS}, param_budget=500))
    for case in (spec, budgeted):
        for cell in case.cell_types:
            study = optuna.create_study()
            study.enqueue_trial({"cell_type": cell})
            trial = study.ask()
            suggest_config(trial, case, input_size=2, output_size=1, seed=0)
            assert trial.distributions == seeding.cell_distributions(case, cell)


def test_the_best_of_each_cell_type_seed_it_and_outsiders_are_left_out() -> None:
    spec = warm_spec()
    trials = source_trials(spec, 20)
    odd = trials[0]
    odd.params["hidden_size"] = 64  # outside this study's 4..16
    odd.distributions["hidden_size"] = optuna.distributions.IntDistribution(4, 64)
    reevaluated = source_trials(spec, 1, seed=1, **reevaluation_attrs(3, 0, 0))
    pruned = optuna.trial.create_trial(state=TrialState.PRUNED, params={}, distributions={})
    seeds = seeds_for(spec, [*trials, *reevaluated, pruned])
    assert seeds.per_cell() == {"lstm": 5, "gru": 5}
    assert seeds.left_out == 1 and seeds.sources == ("cold",)
    for cell in CELLS:
        values = sorted(float(t.values[0]) for t in trials[1:] if t.params["cell_type"] == cell)
        assert [s.value for s in seeds.seeds if s.cell_type == cell] == values[:5]
    again = seeding.WarmSeeds.from_json(seeds.to_json())
    assert again == seeds and again.trials(spec, "gru")[0].number == -1


def test_sources_that_cannot_seed_are_named() -> None:
    spec = warm_spec()
    sources: dict[str, seeding.Source | None] = {"cold": None}
    assert [e.msg for e in seeding.problems(spec, sources)] == ["no study named 'cold'"]

    def problem(source_space: dict[str, Any], **changes: Any) -> str:
        data = spec_data(name="cold", space=source_space, budget={"n_trials": 60}, **changes)
        found = seeding.problems(spec, {"cold": seeding.Source("cold", parse_spec(data), [])})
        assert [e.loc for e in found] == [("warm_start", "from")]
        return found[0].msg

    assert "no cell type" in problem({"cell_type": ["mgu"]})
    assert "does not search lstm.forget_bias" in problem({**SPACE, "lstm.forget_bias": 1.0})
    assert "also searches dropout" in problem({**SPACE, "dropout": {"low": 0, "high": 0.5}})
    assert "as a choice" in problem({**SPACE, "hidden_size": [4, 8]})
    task = {"kind": "digits"}
    objective = {"metric": "val_metric", "direction": "maximize"}
    assert "objective" in problem(SPACE, task=task, objective=objective)
    assert "no completed trial" in problem(SPACE)


def test_a_random_phase_that_takes_every_trial_leaves_seeds_nothing() -> None:
    spec = warm_spec(n_trials=20)  # 10 a cell: all random draws
    found = seeding.problems(spec, {"cold": None})
    assert found[0].loc == ("warm_start",) and "budget.n_trials above 20" in found[0].msg


# --- who sees the seeds --------------------------------------------------------------------


def test_only_adaptive_draws_are_shown_seeds_and_only_of_their_cell_type() -> None:
    spec = warm_spec()
    seeds = seeds_for(spec, source_trials(spec, 20))
    for index in range(spec.budget.n_trials):
        shown = shown_seeds(spec, index, seeds)
        if draw_attrs(spec, index)[Attr.DRAW] == Draw.RANDOM:
            assert shown == [] and warm_attrs(spec, index, seeds) == {}
            assert make_sampler(spec, index, seeds).seeds == []  # type: ignore[attr-defined]
        else:
            sampler = make_sampler(spec, index, seeds)
            cell = sampler.cell  # type: ignore[attr-defined]
            assert [s.params["cell_type"] for s in shown] == [cell] * 5
            assert warm_attrs(spec, index, seeds) == {Attr.WARM_START: 5}


def test_random_draws_are_the_same_with_and_without_seeds() -> None:
    spec = warm_spec()
    seeds = seeds_for(spec, source_trials(spec, 20))

    def drawn(shown: seeding.WarmSeeds | None) -> list[dict[str, Any]]:
        study = optuna.create_study()
        params = []
        for index in range(20):  # the first ten rounds: random draws
            study.sampler = make_sampler(spec, index, shown)
            trial = study.ask()
            suggest_config(trial, spec, input_size=2, output_size=1, seed=0)
            params.append(trial.params)
        return params

    assert drawn(seeds) == drawn(None)


def test_tpe_proposes_near_the_seeds_from_the_first_adaptive_draw() -> None:
    spec = warm_spec(warm_start={"from": ["cold"], "top_k": 40})  # every source trial
    seeds = seeds_for(spec, source_trials(spec, 40))
    adaptive = [i for i in range(60) if draw_attrs(spec, i)[Attr.DRAW] == Draw.ADAPTIVE]

    def learning_rates(shown: seeding.WarmSeeds | None) -> list[float]:
        found = []
        for index in adaptive[:16]:
            study = optuna.create_study()  # no trial of its own: only the seeds can guide it
            study.sampler = make_sampler(spec, index, shown)
            trial = study.ask()
            suggest_config(trial, spec, input_size=2, output_size=1, seed=0)
            found.append(abs(math.log10(trial.params["learning_rate"]) + 2))
        return found

    assert np.median(learning_rates(seeds)) < 0.3  # the seeds' best are near 1e-2
    assert np.median(learning_rates(None)) > 0.5  # at random over 1e-4..1e-1


def test_the_pruner_is_never_shown_seeds() -> None:
    spec = warm_spec()
    seeds = seeds_for(spec, source_trials(spec, 5)).trials(spec, "lstm")
    study = optuna.create_study()
    with pytest.raises(ValueError, match="samplers only"):
        cell_view(study, "lstm", strict=True, seeds=seeds)
    view = cell_view(study, "lstm", strict=False, seeds=seeds)
    assert len(view.get_trials(states=(TrialState.COMPLETE,))) == 5
    assert view.get_trials(states=(TrialState.RUNNING,)) == []
    assert study.get_trials() == []  # seeds are no trials of the study


def test_the_report_tests_no_draw_proposed_from_seeds_and_says_so() -> None:
    trials = source_trials(warm_spec(), 3)
    for trial in trials[:2]:
        trial.user_attrs[Attr.WARM_START] = 5
    assert warm.tested(trials) == trials[2:]
    note = warm.note(trials)
    assert note is not None and "not draws of this study" in note
    assert warm.note(trials[2:]) is None
    with pytest.raises(SpecError):
        parse_spec({**spec_data(), "warm_start": {"from": ["adding-t20"]}})
