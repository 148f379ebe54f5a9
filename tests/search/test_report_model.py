"""The typed report: a client parses it without the server's dependencies, its JSON survives
a round trip, and the models refuse what a report never holds (NaN, unknown fields)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from optuna.trial import TrialState
from pydantic import ValidationError

from cellsearch.search.record import COUNTED_FAILURES, REQUEUED_FAILURES
from cellsearch.search.report import build_report
from cellsearch.search.report.formatting import number
from cellsearch.search.report.model import DrawCounts, FailureCounts, PairTest, StudyReport
from cellsearch.search.report.suite import build_suite_report
from cellsearch.search.report.suite_model import SuiteReport
from tests.search.test_report import make_context, make_trial, two_cell_trials
from tests.search.test_report_draws import _reevaluated
from tests.search.test_suite_report import study_report, task

HEAVY = ("numpy", "scipy", "optuna", "torch", "sqlalchemy", "cellsearch.search.report.build")


def test_the_models_import_without_numpy_optuna_or_torch() -> None:
    code = (
        "import sys\n"
        "from cellsearch.search.report.model import StudyReport\n"
        "from cellsearch.search.report.suite_model import SuiteReport\n"
        "from cellsearch.search.report.formatting import number\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_report_survives_its_json() -> None:
    search = [make_trial(i, ("lstm", "gru")[i % 2], 0.5 + 0.01 * i) for i in range(8)]
    search.append(make_trial(8, "gru", None, state=TrialState.PRUNED, curve={0: 0.9}))
    again = [_reevaluated(100 + s, "gru", 1, s, 0.30 + 0.01 * s) for s in range(3)]
    again += [_reevaluated(200 + s, "lstm", 0, s, 0.60 + 0.01 * s) for s in range(3)]
    context = make_context(n_trials=8, reevaluate=(1, 3), baseline=1 / 6)
    report = build_report([*search, *again], context, n_bootstrap=50)
    assert report.reevaluation is not None and report.trials is not None
    text = report.to_json()
    parsed = StudyReport.model_validate_json(text)
    assert parsed == report and parsed.to_json() == text
    assert json.loads(text) == report.model_dump(mode="json")


def test_a_suite_report_survives_its_json() -> None:
    tasks = [task(f"t{i}", study_report({"lstm": [0.1, 0.2], "gru": [0.3 + i]})) for i in range(7)]
    report = build_suite_report("s", tasks, cell_types=["lstm", "gru"])
    assert report.comparison is not None and report.comparison.friedman is not None
    parsed = SuiteReport.model_validate_json(report.to_json())
    assert parsed == report and parsed.to_json() == report.to_json()


def test_failure_counts_name_every_failure_kind_in_order() -> None:
    assert tuple(FailureCounts.model_fields) == COUNTED_FAILURES + REQUEUED_FAILURES


def test_the_models_refuse_nan_unknown_fields_and_changes() -> None:
    pair = {
        "a": "gru", "b": "lstm", "n_a": 3, "n_b": 3, "draws_a": 3, "draws_b": 3,
        "p_best_of_n": 0.5, "p_single": 0.5, "p_value": 1.0, "p_adjusted": 1.0,
        "reject": False, "better": None, "method": "exact",
    }  # fmt: skip
    PairTest.model_validate(pair)
    with pytest.raises(ValidationError, match="finite"):
        PairTest.model_validate({**pair, "p_value": float("nan")})
    with pytest.raises(ValidationError, match="Extra inputs"):
        DrawCounts.model_validate({"n": 1, "completed": 1, "failed": 0, "pruned": 0})
    counts = DrawCounts(n=1, completed=1, failed=0)
    with pytest.raises(ValidationError, match="frozen"):
        counts.n = 2


def test_one_report_is_strict_json_with_every_kind_of_trial() -> None:
    trials = two_cell_trials(0.0, 5)
    trials.append(make_trial(10, "gru", float("inf")))  # a COMPLETE trial with no number
    trials.append(make_trial(11, "lstm", None, state=TrialState.FAIL))
    trials.append(make_trial(12, "lstm", None, state=TrialState.RUNNING))
    text = build_report(trials, make_context(status="running")).to_json()  # allow_nan=False
    assert "NaN" not in text and "Infinity" not in text


@pytest.mark.parametrize(
    ("value", "digits", "plain", "page"),
    [
        (None, 4, "-", "&mdash;"),
        (0.123456, 4, "0.1235", "0.1235"),
        (0.123456, 2, "0.12", "0.12"),
        (1e-05, 4, "1e-05", "1e-05"),
        (12, 4, "12", "12"),
        (True, 4, "True", "True"),
        ("a<b>&'c'", 4, "a<b>&'c'", "a&lt;b&gt;&amp;&#x27;c&#x27;"),
    ],
)
def test_one_number_formatter_for_the_cli_and_the_page(
    value: object, digits: int, plain: str, page: str
) -> None:
    """The CLI writes a missing number as ``-`` and text as it is; a page writes ``&mdash;``
    and escapes the text. Floats are the same in both."""
    assert number(value, digits) == plain
    assert number(value, digits, html=True) == page
