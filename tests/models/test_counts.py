"""Closed-form parameter counts and the hidden-size solver."""

from __future__ import annotations

import pytest

from cellsearch.models import (
    CELLS,
    ModelError,
    SequenceModel,
    count_parameters,
    get_cell,
    model_param_count,
    solve_hidden_size,
)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize(("input_size", "hidden_size"), [(1, 1), (3, 17), (40, 8)])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_param_count_formula(name: str, input_size: int, hidden_size: int, num_layers: int) -> None:
    spec = get_cell(name)
    stack = spec.build(input_size, hidden_size, num_layers)
    assert spec.param_count(input_size, hidden_size, num_layers) == count_parameters(stack)


def test_published_counts() -> None:
    # REFERENCES.md: LSTM 4 (HI + HH + 2H), GRU 3 (...), RNN 1 (...) per layer
    assert get_cell("lstm").param_count(10, 20, 1) == 4 * (200 + 400 + 40)
    assert get_cell("gru").param_count(10, 20, 1) == 3 * (200 + 400 + 40)
    assert get_cell("rnn_tanh").param_count(10, 20, 2) == (200 + 400 + 40) + (400 + 400 + 40)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("output_size", [1, 10])
def test_model_param_count(name: str, output_size: int) -> None:
    model = SequenceModel(name, 5, 12, num_layers=2, output_size=output_size)
    assert model_param_count(name, 5, 12, 2, output_size) == count_parameters(model)


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("budget", [5_000, 20_000, 100_000])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_solve_hidden_size_within_5_percent(name: str, budget: int, num_layers: int) -> None:
    # cells without recurrent matrices grow linearly in H: 100k needs H > 4096 with 2 inputs
    hidden = solve_hidden_size(name, 2, num_layers, 1, budget, high=1 << 16)
    count = model_param_count(name, 2, hidden, num_layers, 1)
    assert abs(count - budget) <= 0.05 * budget
    # it is the closest: neither neighbour is closer
    for other in (hidden - 1, hidden + 1):
        assert abs(model_param_count(name, 2, other, num_layers, 1) - budget) >= abs(count - budget)


def test_solve_hidden_size_respects_range() -> None:
    assert solve_hidden_size("lstm", 2, 1, 1, 10**9, high=64) == 64
    assert solve_hidden_size("lstm", 2, 1, 1, 1, low=3) == 3
    with pytest.raises(ModelError):
        solve_hidden_size("lstm", 2, 1, 1, 0)
    with pytest.raises(ModelError):
        solve_hidden_size("lstm", 2, 1, 1, 100, low=10, high=5)


def test_equal_budget_gives_cell_specific_sizes() -> None:
    # Chung et al. 2014 style: at ~20k parameters the tanh RNN gets the most units
    sizes = {name: solve_hidden_size(name, 1, 1, 1, 20_000) for name in ("lstm", "gru", "rnn_tanh")}
    assert sizes["rnn_tanh"] > sizes["gru"] > sizes["lstm"]
