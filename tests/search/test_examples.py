"""The example specs: valid, and built so that their comparison can answer.

`benchmarks/examples_check.py` runs each one to completion (minutes to an hour on a
2-core CPU); these checks are the part that needs no training: every example parses under
the default server limits, gives every cell type at least three trials (so that at least
three can complete: with a pruner, the minimum-completions guard keeps them), and says in
its header how long it takes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cellsearch.search.report.compare import MIN_TEST_SIZE
from cellsearch.search.study.limits import parse_spec

# study specs; the suite examples (a `tasks` list) are checked in test_suite_spec.py
EXAMPLES = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.yaml")
    if "tasks" not in yaml.safe_load(p.read_text())
)


def test_there_are_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"quickstart", "adding-t100"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_can_end_with_a_tested_verdict(path: Path) -> None:
    spec = parse_spec(yaml.safe_load(path.read_text()))
    per_cell = spec.budget.n_trials // len(spec.cell_types)
    assert per_cell >= MIN_TEST_SIZE, f"{path.name}: {per_cell} trials per cell type"
    if spec.pruner != "none":
        assert spec.pruning.min_complete_per_cell >= MIN_TEST_SIZE
    if spec.reevaluate is not None:
        assert spec.reevaluate.seeds >= MIN_TEST_SIZE
    header = path.read_text().split("\nname:")[0]
    assert re.search(r"Measured: \d+ (s|min(ute)?s?) on a 2-core CPU", header), (
        f"{path.name}: no time"
    )


def test_the_t100_example_reevaluates() -> None:
    (path,) = [p for p in EXAMPLES if p.stem == "adding-t100"]
    assert parse_spec(yaml.safe_load(path.read_text())).reevaluate is not None
