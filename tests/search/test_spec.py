"""The study spec: defaults, parsing of each parameter form, and every error path."""

from __future__ import annotations

from typing import Any

import pytest

from cellsearch.search.errors import SpecError
from cellsearch.search.study.limits import SpecLimits, parse_spec
from cellsearch.search.study.spec import FloatRange, IntRange, StudySpec


def spec_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "adding-t20",
        "task": {"kind": "adding", "seq_len": 20, "n_train": 64, "n_val": 32, "n_test": 32},
        "budget": {"n_trials": 4, "max_epochs": 2},
    }
    data.update(overrides)
    return data


def errors_of(data: dict[str, Any], limits: SpecLimits | None = None) -> list[tuple[Any, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(data, limits)
    return [(e.loc, e.msg) for e in info.value.errors]


def test_defaults_follow_the_design() -> None:
    spec = parse_spec(spec_data())
    assert spec.cell_types == ["lstm", "gru", "rnn_tanh"]
    assert spec.space.param("hidden_size") == IntRange(low=16, high=256, log=True)
    assert spec.space.param("learning_rate") == FloatRange(low=1e-4, high=1e-1, log=True)
    assert (spec.allocation, spec.sampler, spec.pruner) == ("balanced", "tpe", "hyperband")
    assert spec.objective.direction == "minimize"


def test_dotted_cell_options_are_collected_and_round_trip() -> None:
    space = {"cell_type": ["lstm", "indrnn"], "lstm.forget_bias": {"low": 0, "high": 2}}
    spec = parse_spec(spec_data(space=space))
    assert spec.space.cell_options == {"lstm": {"forget_bias": FloatRange(low=0, high=2)}}
    again = StudySpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec


@pytest.mark.parametrize(
    ("space", "field", "text"),
    [
        ({"cell_type": ["lstm", "tcn"]}, "cell_type", "valid names: lstm, gru"),
        ({"cell_type": []}, "cell_type", "at least one"),
        ({"cell_type": ["gru", "gru"]}, "cell_type", "once"),
        ({"optimizer": "lbfgs"}, "optimizer", "valid: adam"),
        ({"hidden_size": 0}, "hidden_size", "at least 1"),
        ({"hidden_size": {"low": 64, "high": 8}}, "hidden_size", "must not exceed"),
        ({"learning_rate": {"low": 0, "high": 1, "log": True}}, "learning_rate", "log range"),
        ({"dropout": 1.0}, "dropout", "[0, 1)"),
        ({"batch_size": []}, "batch_size", "must not be empty"),
        ({"grad_clip": -1.0}, "grad_clip", ">= 0"),
    ],
)
def test_invalid_space_names_the_field(space: dict[str, Any], field: str, text: str) -> None:
    errors = errors_of(spec_data(space=space))
    assert any(field in map(str, loc) and text in msg for loc, msg in errors), errors


def test_unknown_cell_option_lists_valid_options() -> None:
    errors = errors_of(spec_data(space={"cell_type": ["gru"], "lstm.forget_bias": 1.0}))
    assert any("not in cell_type" in msg for _, msg in errors), errors
    errors = errors_of(spec_data(space={"cell_type": ["gru"], "gru.forget_bias": 1.0}))
    assert any("valid: none" in msg for _, msg in errors), errors
    errors = errors_of(spec_data(space={"cell_type": ["lstm"], "lstm.peep": 1.0}))
    assert any("valid: forget_bias" in msg for _, msg in errors), errors


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"name": "Bad Name"}, ("name",)),
        ({"task": {"kind": "sorting"}}, ("task",)),
        ({"budget": {"n_trials": 0}}, ("budget", "n_trials")),
        ({"sampler": "cmaes"}, ("sampler",)),
        ({"pruner": "patient"}, ("pruner",)),
        ({"objective": {"metric": "val_loss", "direction": "maximize"}}, ("objective",)),
        ({"extra_key": 1}, ("extra_key",)),
    ],
)
def test_invalid_top_level_fields(overrides: dict[str, Any], loc: tuple[str, ...]) -> None:
    errors = errors_of(spec_data(**overrides))
    assert any(tuple(map(str, e_loc))[: len(loc)] == loc for e_loc, _ in errors), errors


def test_param_budget_excludes_an_explicit_hidden_size() -> None:
    spec = parse_spec(spec_data(param_budget=5000))
    stored = spec.to_json()
    assert "hidden_size" not in stored["space"]
    assert StudySpec.model_validate(stored) == spec  # a worker can reload it
    errors = errors_of(spec_data(param_budget=5000, space={"hidden_size": 32}))
    assert any("not both" in msg for _, msg in errors)


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"space": {"hidden_size": {"low": 8, "high": 4096}}}, "max_hidden_size"),
        ({"space": {"num_layers": 9}}, "max_num_layers"),
        ({"budget": {"n_trials": 4, "max_epochs": 5000}}, "max_epochs"),
        ({"budget": {"n_trials": 50_000}}, "max_trials"),
        ({"task": {"kind": "adding", "seq_len": 99_999}}, "max_seq_len"),
        ({"space": {"batch_size": [32, 99_999]}}, "max_batch_size"),
        ({"param_budget": 10**9}, "max_param_budget"),
    ],
)
def test_limits_name_the_setting(overrides: dict[str, Any], setting: str) -> None:
    errors = errors_of(spec_data(**overrides))
    assert any(setting in msg for _, msg in errors), errors


def test_limits_are_configurable() -> None:
    data = spec_data(space={"hidden_size": 64})
    parse_spec(data)
    errors = errors_of(data, SpecLimits(max_hidden_size=32))
    assert errors == [
        (("space", "hidden_size"), "64 exceeds this server's limit max_hidden_size=32")
    ]
