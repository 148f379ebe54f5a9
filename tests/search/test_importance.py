"""Importances that mean something (issue 30, item 7): the estimator against an
independent reference, its bootstrap and permutation replicates, and the report's calls."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial
from scipy import stats as sps

from cellsearch.search.report import importance_stats as istats
from cellsearch.search.report.importance import (
    MIN_TRIALS_TO_TELL,
    cell_type_rank,
    param_importances,
)

CELLS = ("lstm", "gru", "rnn_tanh")
DISTRIBUTIONS = {
    "cell_type": CategoricalDistribution(CELLS),
    "hidden_size": IntDistribution(16, 64, log=True),
    "learning_rate": FloatDistribution(1e-3, 3e-2, log=True),
}


def _epsilon_squared_from_f(groups: list[np.ndarray]) -> float:
    """The adjusted effect from scipy's one-way ANOVA F: (g - 1)(F - 1) / ((g - 1) F + n - g)."""
    f = sps.f_oneway(*groups).statistic
    g, n = len(groups), sum(len(x) for x in groups)
    return max(0.0, (g - 1) * (f - 1) / ((g - 1) * f + n - g))


def test_a_categorical_effect_matches_scipys_one_way_anova() -> None:
    rng = np.random.default_rng(0)
    cells = [CELLS[i % 3] for i in range(30)]
    y = istats.scaled_ranks(rng.normal(size=30) + np.array([CELLS.index(c) for c in cells]))
    design = istats.design_of([{"cell_type": c} for c in cells], ["cell_type"])
    found = istats.effects(design, y)[0, 0]
    groups = [y[[c == name for c in cells]] for name in CELLS]
    assert found == pytest.approx(_epsilon_squared_from_f(groups))


def test_numeric_values_are_cut_into_equal_groups_by_rank() -> None:
    values = [{"x": float(v)} for v in [5, 1, 1, 1, 9, 7, 3, 8, 2, 6, 4, 0]]
    design = istats.design_of(values, ["x"])
    assert design.sizes == [3]  # 12 trials: at least 3 groups, about one per 8 trials
    group = design.groups[0]
    assert len({group[1], group[2], group[3]}) == 1  # equal values share a group
    assert np.bincount(group).tolist() == [4, 4, 4]
    many = istats.design_of([{"x": float(v)} for v in range(100)], ["x"])
    assert many.sizes == [istats.MAX_BINS]


def test_weights_are_repeated_trials_and_inactive_trials_stay_out() -> None:
    rng = np.random.default_rng(1)
    params = [
        {"cell_type": CELLS[i % 3], **({"lstm.forget_bias": float(i)} if i % 3 == 0 else {})}
        for i in range(18)
    ]
    names = ["cell_type", "lstm.forget_bias"]
    y = rng.normal(size=18)
    counts = rng.integers(0, 3, size=18)
    design = istats.design_of(params, names)
    weighted = istats.effects(design, y[None, :], counts[None, :].astype(float))[0]
    keep = np.repeat(np.arange(18), counts)
    # the same groups (cut once, on the original trials) over the repeated trials
    repeated = istats.Design(names, [g[keep] for g in design.groups], design.sizes)
    assert weighted == pytest.approx(istats.effects(repeated, y[keep][None, :])[0])
    assert (design.groups[1] >= 0).sum() == 6  # forget_bias is active in lstm trials only


def test_the_permutation_p_value_and_holm() -> None:
    observed = np.array([0.5, 0.01])
    null = np.tile([[0.1, 0.02]], (99, 1))
    null[:3, 1] = 0.001  # three nulls below the second parameter's effect
    tested = istats.calls(observed, null, 0.05)
    assert tested.p_value.tolist() == pytest.approx([1 / 100, 97 / 100])
    assert tested.p_adjusted.tolist() == pytest.approx([2 / 100, 97 / 100])
    assert tested.important.tolist() == [True, False]
    assert tested.null_high.tolist() == pytest.approx([0.1, 0.02])


def _trials(n: int, world: str, seed: int = 0) -> list[FrozenTrial]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cell = CELLS[i % 3]
        log_lr = rng.uniform(math.log10(1e-3), math.log10(3e-2))
        value = rng.normal()
        if world == "lr":
            value += 3.0 * (log_lr + 2.26) ** 2 * 4
        elif world == "cell":
            value += 1.5 * CELLS.index(cell)
        trial = optuna.trial.create_trial(
            value=float(value),
            params={
                "cell_type": cell,
                "hidden_size": int(rng.integers(16, 65)),
                "learning_rate": float(10**log_lr),
            },
            distributions=DISTRIBUTIONS,
        )
        trial.number = i
        out.append(trial)
    return out


def test_a_deciding_parameter_is_called_important_with_an_interval() -> None:
    found = param_importances(_trials(90, "lr"), maximize=False, seed=0)
    assert found is not None and found.can_tell
    assert found.important == ["learning_rate"]
    lr = found.params[0]
    assert lr.name == "learning_rate" and lr.important and lr.p_adjusted <= 0.05
    assert lr.effect > lr.null_effect
    assert lr.share_low is not None and lr.share_high is not None
    assert lr.share_low <= lr.share <= lr.share_high
    assert sum(found.importances.values()) == pytest.approx(1.0)
    assert found.verdict.startswith("Important: learning_rate explains ")
    assert list(found.importances) == [p.name for p in found.params]


def test_noise_is_not_important_and_a_small_study_cannot_tell() -> None:
    noise = param_importances(_trials(90, "null", seed=4), maximize=False, seed=0)
    assert noise is not None and noise.important == []
    assert noise.verdict.startswith("No hyperparameter stands out from noise among 90")
    small = param_importances(_trials(24, "null", seed=5), maximize=False, seed=0)
    assert small is not None and not small.can_tell and small.important == []
    assert small.verdict.startswith("Cannot tell yet which hyperparameters matter")
    assert f"it needs about {MIN_TRIALS_TO_TELL}" in small.verdict
    assert param_importances(_trials(9, "cell"), maximize=False, seed=0) is None


def test_the_cell_type_rank_carries_its_call_and_interval() -> None:
    found = param_importances(_trials(60, "cell"), maximize=False, seed=0)
    rank = cell_type_rank(found)
    assert rank is not None and rank.rank == 1 and rank.of == 3 and rank.important
    assert rank.share_low is not None and rank.share_low <= rank.share


def test_the_same_trials_and_seed_give_the_same_answer() -> None:
    trials = _trials(40, "cell")
    assert param_importances(trials, maximize=False, seed=3) == param_importances(
        trials, maximize=True, seed=3
    )  # ranks' variance: the direction does not matter
