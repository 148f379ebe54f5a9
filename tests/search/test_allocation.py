"""Balanced allocation and per-cell conditioning of the sampler."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial

from cellsearch.search.study.allocation import CellConditionedSampler, balanced_cell

CELLS = ["lstm", "gru", "rnn_tanh"]
LR = FloatDistribution(1e-5, 1.0, log=True)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_balanced_counts_differ_by_at_most_one_after_any_prefix(seed: int) -> None:
    counts: Counter[str] = Counter()
    for index in range(60):
        counts[balanced_cell(CELLS, seed, index)] += 1
        assert max(counts.values()) - min(counts[c] for c in CELLS) <= 1


def test_rounds_are_shuffled_and_seeded() -> None:
    firsts = {balanced_cell(CELLS, 0, r * len(CELLS)) for r in range(30)}
    assert firsts == set(CELLS)  # no cell always goes first
    assert [balanced_cell(CELLS, 5, i) for i in range(9)] == [
        balanced_cell(CELLS, 5, i) for i in range(9)
    ]


def history(study: optuna.Study, cell: str, best_lr: float, n: int = 20) -> None:
    """Trials of ``cell`` whose value is best near ``best_lr``."""
    dists = {"cell_type": CategoricalDistribution(CELLS), "learning_rate": LR}
    for i in range(n):
        lr = 10 ** (-5 + 5 * i / (n - 1))
        study.add_trial(
            optuna.trial.create_trial(
                params={"cell_type": cell, "learning_rate": lr},
                distributions=dists,
                value=abs(math.log10(lr) - math.log10(best_lr)),
            )
        )


class Recording(optuna.samplers.RandomSampler):
    """A random sampler that records which trials it was shown."""

    seen: list[list[str]]

    def sample_independent(self, study: Any, trial: FrozenTrial, name: str, dist: Any) -> Any:
        self.seen.append([t.params["cell_type"] for t in study.get_trials(deepcopy=False)])
        return super().sample_independent(study, trial, name, dist)


def test_base_sampler_sees_only_its_cells_trials() -> None:
    study = optuna.create_study()
    history(study, "lstm", 1e-4, n=5)
    history(study, "gru", 1e-1, n=7)
    base = Recording(seed=0)
    base.seen = []
    study.sampler = CellConditionedSampler("gru", base)
    trial = study.ask()
    assert trial.suggest_categorical("cell_type", CELLS) == "gru"
    trial.suggest_float("learning_rate", 1e-5, 1.0, log=True)
    assert base.seen == [["gru"] * 8]  # the 7 earlier gru trials and the running one


def test_tpe_proposals_follow_each_cells_own_history() -> None:
    study = optuna.create_study()
    history(study, "lstm", 1e-4)
    history(study, "gru", 1e-1)

    def proposals(cell: str) -> list[float]:
        out = []
        for i in range(8):
            tpe = optuna.samplers.TPESampler(seed=i, n_startup_trials=5)
            study.sampler = CellConditionedSampler(cell, tpe)
            trial = study.ask()
            assert trial.suggest_categorical("cell_type", CELLS) == cell
            out.append(trial.suggest_float("learning_rate", 1e-5, 1.0, log=True))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return sorted(out)

    lstm, gru = proposals("lstm"), proposals("gru")
    assert lstm[len(lstm) // 2] < 1e-3 < gru[len(gru) // 2], (lstm, gru)
