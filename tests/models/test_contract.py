"""The contract every registered cell keeps, run once per cell (fastrnns-style)."""

from __future__ import annotations

import pytest
import torch

from cellsearch.models import CELLS, RecurrentStack, StateError, count_parameters, get_cell

INPUT, HIDDEN = 3, 5


def _build(name: str, num_layers: int = 1, seed: int = 0) -> RecurrentStack:
    torch.manual_seed(seed)
    return get_cell(name).build(INPUT, HIDDEN, num_layers).double()


@pytest.mark.parametrize("name", sorted(CELLS))
class TestCellContract:
    @pytest.mark.parametrize("num_layers", [1, 3])
    @pytest.mark.parametrize(("batch", "steps"), [(4, 7), (1, 6), (3, 1)])
    def test_shapes(self, name: str, num_layers: int, batch: int, steps: int) -> None:
        stack = _build(name, num_layers)
        output, state = stack(torch.randn(batch, steps, INPUT, dtype=torch.float64))
        assert output.shape == (batch, steps, HIDDEN)
        assert isinstance(state, tuple)
        assert len(state) == len(get_cell(name).state_layout)
        assert all(s.shape == (num_layers, batch, HIDDEN) for s in state)
        # h of the last layer is the last output step
        torch.testing.assert_close(state[0][-1], output[:, -1])

    @pytest.mark.parametrize("num_layers", [1, 2])
    def test_state_round_trip(self, name: str, num_layers: int) -> None:
        stack = _build(name, num_layers)
        x = torch.randn(2, 9, INPUT, dtype=torch.float64)
        whole, whole_state = stack(x)
        first, state = stack(x[:, :4])
        second, split_state = stack(x[:, 4:], state)
        torch.testing.assert_close(torch.cat([first, second], 1), whole)
        for a, b in zip(split_state, whole_state, strict=True):
            torch.testing.assert_close(a, b)

    def test_step_by_step_equals_whole(self, name: str) -> None:
        stack = _build(name, 2)
        x = torch.randn(2, 5, INPUT, dtype=torch.float64)
        whole, _ = stack(x)
        state = None
        for t in range(5):
            out, state = stack(x[:, t : t + 1], state)
            torch.testing.assert_close(out[:, 0], whole[:, t])

    @pytest.mark.parametrize("num_layers", [1, 3])
    def test_gradients_reach_every_parameter(self, name: str, num_layers: int) -> None:
        stack = _build(name, num_layers)
        x = torch.randn(16, 8, INPUT, dtype=torch.float64, requires_grad=True)
        output, state = stack(x)
        (output.sum() + sum(s.sum() for s in state)).backward()
        assert x.grad is not None and bool(x.grad.abs().sum() > 0)
        for param_name, param in stack.named_parameters():
            assert param.grad is not None, param_name
            assert bool(param.grad.abs().sum() > 0), param_name

    def test_gradient_reaches_initial_state(self, name: str) -> None:
        stack = _build(name, 2)
        x = torch.randn(2, 4, INPUT, dtype=torch.float64)
        state = tuple(s.requires_grad_() for s in stack.initial_state(2, dtype=torch.float64))
        output, _ = stack(x, state)
        output.sum().backward()
        assert state[0].grad is not None and bool(state[0].grad.abs().sum() > 0)

    def test_seeded_determinism(self, name: str) -> None:
        x = torch.randn(2, 5, INPUT, dtype=torch.float64)
        a, b = _build(name, 2, seed=7), _build(name, 2, seed=7)
        for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(pa, pb)
        assert torch.equal(a(x)[0], b(x)[0])
        assert not torch.equal(_build(name, 2, seed=8)(x)[0], a(x)[0])

    @pytest.mark.filterwarnings("ignore:dropout option adds dropout")
    def test_dropout_only_between_layers(self, name: str) -> None:
        torch.manual_seed(0)
        one_layer = get_cell(name).build(INPUT, HIDDEN, 1, dropout=0.9).double().train()
        x = torch.randn(2, 4, INPUT, dtype=torch.float64)
        torch.testing.assert_close(one_layer(x)[0], one_layer(x)[0])  # no dropout after last
        torch.manual_seed(0)
        two = get_cell(name).build(INPUT, HIDDEN, 2, dropout=0.9).double().train()
        assert not torch.equal(two(x)[0], two(x)[0])
        two.eval()
        assert torch.equal(two(x)[0], two(x)[0])

    def test_param_count_matches_spec(self, name: str) -> None:
        spec = get_cell(name)
        assert count_parameters(spec.build(INPUT, HIDDEN, 2)) == spec.param_count(INPUT, HIDDEN, 2)

    def test_bad_state_is_rejected(self, name: str) -> None:
        stack = _build(name, 2)
        x = torch.randn(2, 4, INPUT, dtype=torch.float64)
        good = stack.initial_state(2, dtype=torch.float64)
        with pytest.raises(StateError):
            stack(x, (*good, good[0]))
        with pytest.raises(StateError):
            stack(x, tuple(s[:1] for s in good))
