"""The cross-task report: scores taken from per-study reports, exclusions, known answers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from scipy import stats as sps

from cellsearch.search.report import ReportContext
from cellsearch.search.report.suite import (
    SuiteTask,
    build_suite_report,
    cell_score,
    study_report_for_suite,
    study_scores,
)

CELLS = ("lstm", "gru", "rnn_tanh")


def _trial(number: int, cell: str, value: float | None, state: TrialState) -> FrozenTrial:
    trial = optuna.trial.create_trial(
        state=state,
        value=value,
        params={"cell_type": cell, "learning_rate": 0.01},
        distributions={
            "cell_type": CategoricalDistribution(CELLS),
            "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
        },
        user_attrs={"cell_type": cell},
        intermediate_values={0: 1.0} if state == TrialState.PRUNED else {},
    )
    trial.number = number
    return trial


def study_report(
    values: dict[str, list[float]],
    *,
    direction: str = "minimize",
    baseline: float | None = None,
    pruned: tuple[str, ...] = (),
) -> dict[str, Any]:
    """A real per-study report of completed trials with the given values per cell."""
    trials: list[FrozenTrial] = []
    for cell, cell_values in values.items():
        for v in cell_values:
            trials.append(_trial(len(trials), cell, v, TrialState.COMPLETE))
    for cell in pruned:
        trials.append(_trial(len(trials), cell, None, TrialState.PRUNED))
    context = ReportContext(
        study_name="s",
        direction=direction,  # type: ignore[arg-type]
        metric="val_loss" if direction == "minimize" else "val_metric",
        n_trials=len(trials),
        cell_types=tuple(values) + tuple(c for c in pruned if c not in values),
        allocation="balanced",
        seed=0,
        status="completed",
        baseline=baseline,
    )
    return study_report_for_suite(trials, context)


def task(name: str, report: dict[str, Any] | None, status: str = "completed") -> SuiteTask:
    return SuiteTask(name, f"suite-{name}", "adding", status, 6, 6, report)


# --- the score of one cell on one task ------------------------------------------------


def test_cell_score_is_the_best_validation_value_with_its_interval() -> None:
    report = study_report({"lstm": [0.3, 0.1, 0.2], "gru": [0.5, 0.4]})
    scores = study_scores(report)
    assert scores["lstm"].value == 0.1 and scores["gru"].value == 0.4
    assert scores["lstm"].source == "best_validation" and scores["lstm"].n == 3
    (lstm,) = [c for c in report["cells"] if c["cell_type"] == "lstm"]
    assert (scores["lstm"].low, scores["lstm"].high) == (
        lstm["best"]["ci_low"],
        lstm["best"]["ci_high"],
    )


def test_cell_without_completed_trials_has_no_score() -> None:
    report = study_report({"lstm": [0.3]}, pruned=("gru",))
    assert set(study_scores(report)) == {"lstm"}
    (gru,) = [c for c in report["cells"] if c["cell_type"] == "gru"]
    assert cell_score(gru) is None


def _with_reevaluation(report: dict[str, Any], means: dict[str, float]) -> dict[str, Any]:
    cells = []
    for cell in report["cells"]:
        mean = means.get(cell["cell_type"])
        extra = {}
        if mean is not None:
            summary = {"n": 5, "mean": mean, "std": 0.01, "ci_low": mean - 0.02,
                       "ci_high": mean + 0.02}  # fmt: skip
            extra = {"reevaluation": {"validation": summary}}
        cells.append({**cell, **extra})
    return {**report, "cells": cells}


def test_reevaluated_mean_is_preferred_when_every_cell_has_one() -> None:
    report = _with_reevaluation(
        study_report({"lstm": [0.1], "gru": [0.2]}), {"lstm": 0.15, "gru": 0.18}
    )
    scores = study_scores(report)
    assert scores["lstm"].value == 0.15 and scores["lstm"].source == "reevaluated_mean"
    assert (scores["gru"].low, scores["gru"].high, scores["gru"].n) == pytest.approx((0.16, 0.2, 5))


def test_a_task_never_mixes_reevaluated_means_with_best_values() -> None:
    report = _with_reevaluation(study_report({"lstm": [0.1], "gru": [0.2]}), {"lstm": 0.15})
    scores = study_scores(report)
    assert {s.source for s in scores.values()} == {"best_validation"}
    assert scores["lstm"].value == 0.1


# --- the suite report ----------------------------------------------------------------


def test_consistent_order_on_eight_tasks_gives_known_ranks_friedman_and_verdict() -> None:
    # lstm < gru < rnn_tanh in loss on every task (different scales): ranks 1, 2, 3.
    rng = np.random.default_rng(0)
    tasks = []
    for i in range(8):
        scale = float(10 ** rng.uniform(-2, 1))
        values = {"lstm": [scale * 1.0], "gru": [scale * 1.5], "rnn_tanh": [scale * 3.0]}
        tasks.append(task(f"t{i}", study_report(values)))
    report = build_suite_report("s", tasks, cell_types=CELLS)
    comparison = report["comparison"]
    assert comparison["average_ranks"] == {"lstm": 1.0, "gru": 2.0, "rnn_tanh": 3.0}
    # Perfect agreement: chi2 = N (k - 1) = 16 on 2 degrees of freedom.
    assert comparison["friedman"]["statistic"] == pytest.approx(16.0)
    assert comparison["friedman"]["p_value"] == pytest.approx(sps.chi2.sf(16.0, 2))
    wtl = {(w["a"], w["b"]): (w["wins"], w["ties"], w["losses"]) for w in report["win_tie_loss"]}
    assert wtl == {("lstm", "gru"): (8, 0, 0), ("lstm", "rnn_tanh"): (8, 0, 0),
                   ("gru", "rnn_tanh"): (8, 0, 0)}  # fmt: skip
    assert report["verdict"].startswith("lstm ranks best over 8 tasks")
    assert "beats every other cell type" in report["verdict"]
    assert report["suite"] == {
        "name": "s", "description": "", "cell_types": list(CELLS), "n_tasks": 8,
        "n_included": 8, "partial": False,
    }  # fmt: skip
    assert report["warnings"] == []
    json.dumps(report, allow_nan=False)


def test_normalised_scores_and_intervals_by_hand() -> None:
    # Minimised task with a baseline of 1.0: n = (b - s) / (b - best).
    report = study_report({"lstm": [0.2, 0.4], "gru": [0.6, 0.7]}, baseline=1.0)
    other = study_report({"lstm": [0.9], "gru": [0.8]}, direction="maximize")
    result = build_suite_report(
        "s", [task("a", report), task("b", other)], cell_types=["lstm", "gru"]
    )
    a = result["scores"]["a"]
    assert a["lstm"]["normalised"] == pytest.approx(1.0)
    assert a["gru"]["normalised"] == pytest.approx((1.0 - 0.6) / (1.0 - 0.2))
    low, high = a["gru"]["low"], a["gru"]["high"]
    # A loss interval flips on the normalised scale: its upper end is the lower one.
    assert a["gru"]["normalised_low"] == pytest.approx((1.0 - high) / 0.8)
    assert a["gru"]["normalised_high"] == pytest.approx((1.0 - low) / 0.8)
    b = result["scores"]["b"]  # maximised, no baseline: 0 is the worst cell
    assert (b["lstm"]["normalised"], b["gru"]["normalised"]) == (1.0, 0.0)
    assert (b["lstm"]["rank"], b["gru"]["rank"]) == (1.0, 2.0)
    assert result["comparison"]["reference"] == ["baseline", "worst"]
    rows = {r["task"]: r for r in result["tasks"]}
    assert (rows["a"]["metric"], rows["a"]["direction"], rows["a"]["baseline"]) == (
        "val_loss", "minimize", 1.0,
    )  # fmt: skip
    assert rows["b"]["score_source"] == "best_validation"
    assert "too few tasks to test (2 tasks" in result["verdict"]


def test_unfinished_and_deleted_studies_are_listed_and_left_out() -> None:
    done = study_report({"lstm": [0.1], "gru": [0.2]})
    tasks = [
        task("done", done),
        SuiteTask("run", "s-run", "copy", "running", 3, 10),
        SuiteTask("wait", "s-wait", "copy", "paused", 0, 10),
        SuiteTask("stop", "s-stop", "ucr", "cancelled", 4, 10),
        SuiteTask("gone", "s-gone", "digits", "missing", 0, 0),
    ]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    rows = {r["task"]: r for r in report["tasks"]}
    assert [r["task"] for r in report["tasks"] if r["included"]] == ["done"]
    assert rows["run"]["reason"] == "running (3 of 10 trials finished); counted once it finishes"
    assert rows["wait"]["reason"].startswith("paused (0 of 10")
    assert rows["stop"]["reason"].startswith("cancelled (4 of 10 trials finished)")
    assert rows["gone"]["reason"] == "its study was deleted"
    assert list(report["scores"]) == ["done"]
    assert report["suite"]["partial"] and report["suite"]["n_included"] == 1
    (warning,) = report["warnings"]
    assert warning.startswith("4 of 5 tasks not counted") and "run (running)" in warning


def test_no_finished_study_yet() -> None:
    tasks = [
        SuiteTask("a", "s-a", "adding", "running", 1, 4),
        SuiteTask("b", "s-b", "copy", "paused", 0, 4),
    ]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    assert report["verdict"] == (
        "no finished study yet: nothing to rank (2 of 2 studies still running or paused)"
    )
    assert report["comparison"] is None and report["scores"] == {} and report["win_tie_loss"] == []


def test_a_cell_without_a_score_drops_the_task_from_ranks_and_says_so() -> None:
    full = [task(f"t{i}", study_report({"lstm": [0.1], "gru": [0.2]})) for i in range(2)]
    holed = task("hole", study_report({"lstm": [0.1]}, pruned=("gru",)))
    empty = task("empty", study_report({}, pruned=("lstm", "gru")))
    report = build_suite_report("s", [*full, holed, empty], cell_types=["lstm", "gru"])
    rows = {r["task"]: r for r in report["tasks"]}
    assert rows["empty"]["reason"] == "no completed trial of any cell type"
    assert rows["hole"]["included"]
    assert report["comparison"]["tasks_dropped"] == ["hole"]
    assert report["comparison"]["n_tasks"] == 2
    assert report["scores"]["hole"]["gru"] is None
    assert report["scores"]["hole"]["lstm"]["rank"] is None
    assert any("hole" in w and "no score" in w for w in report["warnings"])


def test_ties_count_in_win_tie_loss() -> None:
    tasks = [
        task("a", study_report({"lstm": [0.1], "gru": [0.1]})),
        task("b", study_report({"lstm": [0.1], "gru": [0.3]})),
        task("c", study_report({"lstm": [0.4], "gru": [0.3]})),
    ]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    assert report["win_tie_loss"] == [{"a": "lstm", "b": "gru", "wins": 1, "ties": 1, "losses": 1}]
    assert report["comparison"]["average_ranks"] == {"lstm": 1.5, "gru": 1.5}


def test_a_finished_reevaluation_scores_each_cell_by_its_selected_configuration() -> None:
    from cellsearch.search.report.suite import study_scores

    summary = {"n": 5, "mean": 0.25, "std": 0.01, "ci_low": 0.24, "ci_high": 0.26}
    cell = {
        "cell_type": "gru",
        "n_completed": 10,
        "best": {"value": 0.2, "ci_low": 0.19, "ci_high": 0.21},
    }
    reevaluation = {
        "complete": True,
        "cells": {"gru": {"selected": 7, "configurations": [{"of": 7, "val": summary}]}},
    }
    scores = study_scores({"cells": [cell], "reevaluation": reevaluation})
    assert scores["gru"].source == "reevaluated_mean" and scores["gru"].value == 0.25
    pending = study_scores({"cells": [cell], "reevaluation": {**reevaluation, "complete": False}})
    assert pending["gru"].source != "reevaluated_mean" and pending["gru"].value == 0.2
