"""The table of searched hyperparameters: every reader takes them from it.

A spec model built from the table plus one new entry shows that entry in the published
JSON Schema, the spec's checks, the limits check, the optuna-dashboard labels, the
report's configuration tables and the sampler, with no other change.
"""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from pydantic import Field, ValidationError

from cellsearch.search.report.details import fixed_params, hyperparameters
from cellsearch.search.study.hyperparameters import (
    CELL_OPTIONS_DRAW,
    HYPERPARAMETERS,
    Bounds,
    Hyperparameter,
    draw_order,
    in_use,
)
from cellsearch.search.study.limits import SpecLimits, parse_spec
from cellsearch.search.study.param_forms import IntRange
from cellsearch.search.study.spec import SearchSpace, StudySpec, spec_model
from cellsearch.search.trial.space import suggest_config
from cellsearch.service.studies.labels import readable_spec
from cellsearch.service.studies.spec_schema import published_spec_schema
from tests.search.test_spec import errors_of, spec_data

HEADS = Hyperparameter(
    name="num_heads",
    kind="int",
    default=IntRange(low=1, high=8),
    description="Attention heads per layer.",
    bounds=Bounds(low=1),
    limit="max_num_heads",
)


class HeadLimits(SpecLimits):
    """A deployment whose limits include one for the new entry."""

    max_num_heads: int = Field(default=16, ge=1)


@pytest.fixture(scope="module")
def model() -> type[StudySpec]:
    return spec_model((*HYPERPARAMETERS, HEADS))


def _heads(model: type[StudySpec], heads: Any, **overrides: Any) -> StudySpec:
    return model.model_validate(
        spec_data(space={"cell_type": ["gru"], "num_heads": heads}, **overrides)
    )


def _sample(spec: StudySpec, n: int = 4) -> list[optuna.trial.FrozenTrial]:
    """``n`` trials of ``spec``, each drawn by a random sampler of its own seed (a worker
    builds the sampler of each trial so)."""
    study = optuna.create_study()
    for index in range(n):
        study.sampler = optuna.samplers.RandomSampler(seed=index)
        trial = study.ask()
        config = suggest_config(trial, spec, input_size=2, output_size=1, seed=0)
        trial.set_user_attr("hidden_size", config.model.hidden_size)
        study.tell(trial, 1.0)
    return study.trials


def test_the_default_space_declares_the_table() -> None:
    names = [h.name for h in HYPERPARAMETERS]
    assert list(SearchSpace.model_fields) == ["cell_type", *names, "cell_options"]
    space = SearchSpace()
    assert all(space.param(h.name) == h.default for h in HYPERPARAMETERS)
    assert StudySpec.space_table() == HYPERPARAMETERS


def test_every_limit_is_a_setting_and_every_draw_has_its_place() -> None:
    assert {h.limit for h in HYPERPARAMETERS} - {None} <= set(SpecLimits.model_fields)
    draws = [h.draw for h in HYPERPARAMETERS]
    assert len(set(draws)) == len(draws) and CELL_OPTIONS_DRAW not in draws


def test_a_choice_has_names_and_a_number_bounds() -> None:
    with pytest.raises(ValueError, match="neither bounds nor a limit"):
        Hyperparameter(name="x", kind="choice", default="a", values=("a",), limit="max_num_layers")
    with pytest.raises(ValueError, match="only a choice has names"):
        Hyperparameter(name="x", kind="float", default=0.0, values=("a",))


@pytest.mark.parametrize(
    ("bounds", "kind", "schema", "rule"),
    [
        (Bounds(low=1), "int", {"minimum": 1}, "must be at least 1"),
        (Bounds(low=0, low_open=True), "float", {"exclusiveMinimum": 0}, "must be > 0"),
        (Bounds(low=0, below=1), "float", {"minimum": 0, "exclusiveMaximum": 1}, "[0, 1)"),
        (Bounds(low=0), "float", {"minimum": 0}, "must be >= 0"),
    ],
)
def test_bounds_say_the_same_in_the_schema_and_in_words(
    bounds: Bounds, kind: Any, schema: dict[str, float], rule: str
) -> None:
    assert bounds.schema() == schema and rule in bounds.rule(kind)
    assert bounds.positive == ("exclusiveMinimum" in schema or schema.get("minimum", 0) > 0)


def test_a_new_entry_is_in_the_published_schema(model: type[StudySpec]) -> None:
    space = published_spec_schema(HeadLimits(), model)["$defs"]["SearchSpace"]["properties"]
    heads = space["num_heads"]
    scalar = {"type": "integer", "minimum": 1, "maximum": 16}
    assert heads["anyOf"][0] == scalar and heads["anyOf"][1]["items"] == scalar
    assert heads["anyOf"][2]["properties"]["high"] == scalar
    assert heads["description"] == "Attention heads per layer."
    assert (
        "num_heads" not in published_spec_schema(HeadLimits())["$defs"]["SearchSpace"]["properties"]
    )


def test_a_new_entry_is_checked_and_round_trips(model: type[StudySpec]) -> None:
    assert _heads(model, 4).space.param("num_heads") == 4
    with pytest.raises(ValidationError, match="must be at least 1") as info:
        _heads(model, [0, 2])
    assert info.value.errors()[0]["loc"] == ("space", "num_heads")
    spec = _heads(model, {"low": 1, "high": 4})
    assert model.model_validate(spec.to_json()) == spec
    assert spec.ranges()["num_heads"] == (1.0, 4.0, False)
    with pytest.raises(ValidationError, match="Extra inputs"):
        StudySpec.model_validate(spec.to_json())  # the default table has no such entry


def test_a_new_entry_is_limited(model: type[StudySpec]) -> None:
    errors = HeadLimits().check(_heads(model, {"low": 2, "high": 32}))
    assert [(e.loc, e.msg) for e in errors] == [
        (("space", "num_heads"), "32 exceeds this server's limit max_num_heads=16")
    ]
    assert HeadLimits().check(_heads(model, [2, 16])) == []


def test_a_new_entry_is_labelled_and_reported(model: type[StudySpec]) -> None:
    searched = _heads(model, [2, 4])
    assert "num_heads one of 2, 4" in readable_spec(searched)["searched"]
    fixed = _heads(model, 4)
    assert "num_heads=4" in readable_spec(fixed)["fixed"]
    assert fixed_params(fixed)["num_heads"] == 4
    [trial] = _sample(fixed, 1)
    assert hyperparameters(trial, fixed_params(fixed))["num_heads"] == 4


def test_a_new_entry_is_sampled_after_the_others(model: type[StudySpec]) -> None:
    data = spec_data(space={"cell_type": ["gru", "lstm"], "num_layers": [1, 2]})
    old = _sample(StudySpec.model_validate(data))
    new = _sample(model.model_validate(data))
    for before, after in zip(old, new, strict=True):
        params = dict(after.params)
        assert 1 <= params.pop("num_heads") <= 8
        assert params == before.params  # the other draws did not move
    assert "num_heads" in hyperparameters(new[0], fixed_params(model.model_validate(data)))


def test_the_draws_keep_their_order() -> None:
    """A seeded study draws the same values only while the order of draws holds."""
    space = {
        "cell_type": ["lstm", "gru"],
        "lstm.forget_bias": {"low": 0.0, "high": 2.0},
        "num_layers": [1, 2],
        "optimizer": ["adam", "sgd"],
        "batch_size": [16, 32],
        "dropout": {"low": 0.0, "high": 0.5},
        "weight_decay": [0.0, 0.1],
        "grad_clip": [0.0, 1.0],
    }
    trials = _sample(parse_spec(spec_data(space=space)), 12)
    lstm = next(t for t in trials if t.params["cell_type"] == "lstm")
    assert list(lstm.params) == [
        "cell_type", "num_layers", "hidden_size", "lstm.forget_bias", "learning_rate",
        "batch_size", "dropout", "optimizer", "weight_decay", "grad_clip",
    ]  # fmt: skip
    entries = [name for name in lstm.params if name not in ("cell_type", "lstm.forget_bias")]
    assert [h.name for h in draw_order(HYPERPARAMETERS)] == entries


def test_a_parameter_budget_takes_the_hidden_size_s_place() -> None:
    spec = parse_spec(spec_data(param_budget=2000), SpecLimits(max_hidden_size=8))
    assert "hidden_size" not in [h.name for h in in_use(spec.space_table(), spec.param_budget)]
    assert "hidden_size" not in spec.to_json()["space"]
    assert "hidden_size" not in spec.ranges() and "hidden_size" not in fixed_params(spec)
    assert "hidden_size" not in readable_spec(spec)["searched"]
    [trial] = _sample(spec, 1)
    assert "hidden_size" not in trial.params and trial.user_attrs["hidden_size"] > 8
    errors = errors_of(spec_data(param_budget=2000, space={"hidden_size": 32}))
    assert errors == [((), "param_budget: give either space.hidden_size or param_budget, not both")]
    budget = published_spec_schema(SpecLimits())["properties"]["param_budget"]["description"]
    assert budget.endswith("Not together with space.hidden_size.")
