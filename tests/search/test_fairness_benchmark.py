"""The fairness benchmark's own logic (``benchmarks/fairness.py``): the target's check,
a simulated study's epoch accounting, and the same outcomes over several processes."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "fairness.py"


@pytest.fixture(scope="module")
def fairness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fairness_benchmark", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the process pool pickles its functions by module
    spec.loader.exec_module(module)
    return module


def _row(true: float, epochs: float) -> dict[str, float]:
    return {"true": true, "epochs": epochs}


@pytest.mark.parametrize(
    ("none", "cell", "met"),
    [
        (_row(0.94, 810), _row(0.91, 405), True),  # 3 points, exactly half
        (_row(0.94, 810), _row(0.90, 405), False),  # 4 points
        (_row(0.94, 810), _row(0.94, 406), False),  # over half the epochs
        (_row(0.50, 800), _row(0.99, 100), True),  # more often is fine
    ],
)
def test_target_check(fairness: ModuleType, none: dict, cell: dict, met: bool) -> None:
    sentence = fairness.target_check(none, cell)
    assert sentence.split(": ")[1] == ("met" if met else "not met")
    assert f"{cell['true']:.1%} against {none['true']:.1%}" in sentence


def test_unpruned_study_spends_every_epoch(fairness: ModuleType) -> None:
    outcome = fairness.run_study(0, fairness.VARIANTS["none"], 9, 6, n_bootstrap=10)
    assert outcome.epochs == 9 * 6
    assert outcome.completed == {"lstm": 3, "gru": 3, "rnn_tanh": 3}  # balanced allocation


def test_pruned_study_spends_fewer_epochs(fairness: ModuleType) -> None:
    none = fairness.run_study(1, fairness.VARIANTS["none"], 18, 9, n_bootstrap=10)
    cell = fairness.run_study(1, fairness.VARIANTS["cell0"], 18, 9, n_bootstrap=10)
    assert cell.epochs < none.epochs
    assert sum(cell.completed.values()) < 18


def test_processes_give_the_same_outcomes(fairness: ModuleType) -> None:
    args = argparse.Namespace(epochs=6, bootstrap=10, jobs=1, sampler="tpe", random_share=0.3)
    one = fairness.run_variant("cell", 4, 9, args, fairness.CELLS)
    args.jobs = 2
    assert fairness.run_variant("cell", 4, 9, args, fairness.CELLS) == one
