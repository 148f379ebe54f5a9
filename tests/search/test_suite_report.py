"""The cross-task report: scores taken from per-study reports, exclusions, known answers."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from scipy import stats as sps

from cellsearch.search.report import ReportContext
from cellsearch.search.report.model import (
    ReevaluatedCell,
    ReevaluatedConfiguration,
    Reevaluation,
    SeedSummary,
    StudyReport,
)
from cellsearch.search.report.suite import (
    SuiteTask,
    build_suite_report,
    cell_score,
    study_report_for_suite,
    study_scores,
)
from tests.search.test_report import present

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
) -> StudyReport:
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


def task(name: str, report: StudyReport | None, status: str = "completed") -> SuiteTask:
    return SuiteTask(name, f"suite-{name}", "adding", status, 6, 6, report)


# --- the score of one cell on one task ------------------------------------------------


def test_cell_score_is_the_best_validation_value_with_its_interval() -> None:
    report = study_report({"lstm": [0.3, 0.1, 0.2], "gru": [0.5, 0.4]})
    scores = study_scores(report)
    assert scores["lstm"].value == 0.1 and scores["gru"].value == 0.4
    assert scores["lstm"].source == "best_validation" and scores["lstm"].n == 3
    best = present(report.cell("lstm").best)
    assert (scores["lstm"].low, scores["lstm"].high) == (best.ci_low, best.ci_high)


def test_cell_without_completed_trials_has_no_score() -> None:
    report = study_report({"lstm": [0.3]}, pruned=("gru",))
    assert set(study_scores(report)) == {"lstm"}
    assert cell_score(report.cell("gru")) is None


def _with_reevaluation(
    report: StudyReport, means: dict[str, float], *, complete: bool = True
) -> StudyReport:
    """``report`` with a seed re-evaluation of each cell's best trial, at ``means`` (5 seeds)."""
    cells = {}
    for cell, mean in means.items():
        of = present(report.cell(cell).best).trial_number
        val = SeedSummary(n=5, mean=mean, std=0.01, ci_low=mean - 0.02, ci_high=mean + 0.02)
        configuration = ReevaluatedConfiguration(
            of=of, params=None, search_value=None, seeds_finished=5, failed=0, val=val, test=None
        )
        cells[cell] = ReevaluatedCell(configurations=[configuration], selected=of)
    section = Reevaluation(
        top_k=1, seeds=5, finished=5 * len(means), complete=complete, cells=cells,
        comparison=None, means=means,
    )  # fmt: skip
    return report.model_copy(update={"reevaluation": section})


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
    comparison = present(report.comparison)
    assert comparison.average_ranks == {"lstm": 1.0, "gru": 2.0, "rnn_tanh": 3.0}
    # Perfect agreement: chi2 = N (k - 1) = 16 on 2 degrees of freedom.
    friedman = present(comparison.friedman)
    assert friedman.statistic == pytest.approx(16.0)
    assert friedman.p_value == pytest.approx(sps.chi2.sf(16.0, 2))
    wtl = {(w.a, w.b): (w.wins, w.ties, w.losses) for w in report.win_tie_loss}
    assert wtl == {("lstm", "gru"): (8, 0, 0), ("lstm", "rnn_tanh"): (8, 0, 0),
                   ("gru", "rnn_tanh"): (8, 0, 0)}  # fmt: skip
    assert report.verdict.startswith("lstm ranks best over 8 tasks")
    assert "beats every other cell type" in report.verdict
    assert report.suite.model_dump() == {
        "name": "s", "description": "", "cell_types": list(CELLS), "n_tasks": 8,
        "n_included": 8, "partial": False, "n_unlearned": 0, "rank_unlearned": False,
    }  # fmt: skip
    assert report.warnings == []
    json.loads(report.to_json())  # allow_nan=False: no NaN anywhere


def test_normalised_scores_and_intervals_by_hand() -> None:
    # Minimised task with a baseline of 1.0: n = (b - s) / (b - best).
    report = study_report({"lstm": [0.2, 0.4], "gru": [0.6, 0.7]}, baseline=1.0)
    other = study_report({"lstm": [0.9], "gru": [0.8]}, direction="maximize")
    result = build_suite_report(
        "s", [task("a", report), task("b", other)], cell_types=["lstm", "gru"]
    )
    a_lstm, a_gru = present(result.scores["a"]["lstm"]), present(result.scores["a"]["gru"])
    assert a_lstm.normalised == pytest.approx(1.0)
    assert a_gru.normalised == pytest.approx((1.0 - 0.6) / (1.0 - 0.2))
    low, high = present(a_gru.low), present(a_gru.high)
    # A loss interval flips on the normalised scale: its upper end is the lower one.
    assert a_gru.normalised_low == pytest.approx((1.0 - high) / 0.8)
    assert a_gru.normalised_high == pytest.approx((1.0 - low) / 0.8)
    b_lstm, b_gru = present(result.scores["b"]["lstm"]), present(result.scores["b"]["gru"])
    # maximised, no baseline: 0 is the worst cell
    assert (b_lstm.normalised, b_gru.normalised) == (1.0, 0.0)
    assert (b_lstm.rank, b_gru.rank) == (1.0, 2.0)
    assert present(result.comparison).reference == ["baseline", "worst"]
    rows = {r.task: r for r in result.tasks}
    assert (rows["a"].metric, rows["a"].direction, rows["a"].baseline) == (
        "val_loss", "minimize", 1.0,
    )  # fmt: skip
    assert rows["b"].score_source == "best_validation"
    assert "too few tasks to test (2 tasks" in result.verdict


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
    rows = {r.task: r for r in report.tasks}
    assert [r.task for r in report.tasks if r.included] == ["done"]
    assert rows["run"].reason == "running (3 of 10 trials finished); counted once it finishes"
    assert present(rows["wait"].reason).startswith("paused (0 of 10")
    assert present(rows["stop"].reason).startswith("cancelled (4 of 10 trials finished)")
    assert rows["gone"].reason == "its study was deleted"
    assert list(report.scores) == ["done"]
    assert report.suite.partial and report.suite.n_included == 1
    (warning,) = report.warnings
    assert warning.startswith("4 of 5 tasks not counted") and "run (running)" in warning


def test_no_finished_study_yet() -> None:
    tasks = [
        SuiteTask("a", "s-a", "adding", "running", 1, 4),
        SuiteTask("b", "s-b", "copy", "paused", 0, 4),
    ]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    assert report.verdict == (
        "no finished study yet: nothing to rank (2 of 2 studies still running or paused)"
    )
    assert report.comparison is None and report.scores == {} and report.win_tie_loss == []


def test_a_cell_without_a_score_drops_the_task_from_ranks_and_says_so() -> None:
    full = [task(f"t{i}", study_report({"lstm": [0.1], "gru": [0.2]})) for i in range(2)]
    holed = task("hole", study_report({"lstm": [0.1]}, pruned=("gru",)))
    empty = task("empty", study_report({}, pruned=("lstm", "gru")))
    report = build_suite_report("s", [*full, holed, empty], cell_types=["lstm", "gru"])
    rows = {r.task: r for r in report.tasks}
    assert rows["empty"].reason == "no completed trial of any cell type"
    assert rows["hole"].included
    comparison = present(report.comparison)
    assert comparison.tasks_dropped == ["hole"]
    assert comparison.n_tasks == 2
    assert report.scores["hole"]["gru"] is None
    assert present(report.scores["hole"]["lstm"]).rank is None
    assert any("hole" in w and "no score" in w for w in report.warnings)


def test_ties_count_in_win_tie_loss() -> None:
    tasks = [
        task("a", study_report({"lstm": [0.1], "gru": [0.1]})),
        task("b", study_report({"lstm": [0.1], "gru": [0.3]})),
        task("c", study_report({"lstm": [0.4], "gru": [0.3]})),
    ]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    (wtl,) = report.win_tie_loss
    assert wtl.model_dump() == {"a": "lstm", "b": "gru", "wins": 1, "ties": 1, "losses": 1}
    assert present(report.comparison).average_ranks == {"lstm": 1.5, "gru": 1.5}


def test_a_finished_reevaluation_scores_each_cell_by_its_selected_configuration() -> None:
    report = study_report({"gru": [0.2, 0.3, 0.4]})
    scores = study_scores(_with_reevaluation(report, {"gru": 0.25}))
    assert scores["gru"].source == "reevaluated_mean" and scores["gru"].value == 0.25
    pending = study_scores(_with_reevaluation(report, {"gru": 0.25}, complete=False))
    assert pending["gru"].source != "reevaluated_mean" and pending["gru"].value == 0.2


def test_a_reevaluated_suite_task_takes_its_scores_from_the_seeds() -> None:
    plain = study_report({"lstm": [0.1], "gru": [0.2]})
    again = _with_reevaluation(plain, {"lstm": 0.15, "gru": 0.18})
    report = build_suite_report(
        "s", [task("x", again), task("y", plain)], cell_types=["lstm", "gru"]
    )
    rows = {r.task: r for r in report.tasks}
    assert (rows["x"].score_source, rows["y"].score_source) == (
        "reevaluated_mean",
        "best_validation",
    )
    assert present(report.scores["x"]["lstm"]).value == 0.15
    assert any("or the mean over seeds" in note for note in report.notes)
