"""The suite spec: task names, the studies it makes, and every validation error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cellsearch.search.errors import SpecError
from cellsearch.search.study.limits import SpecLimits
from cellsearch.search.study.spec import NAME_PATTERN
from cellsearch.service.suites.spec import parse_suite, slug, task_labels

TINY_ADDING = {"kind": "adding", "seq_len": 8, "n_train": 64, "n_val": 32, "n_test": 32}
TINY_COPY = {"kind": "copy", "seq_len": 5, "n_train": 64, "n_val": 32, "n_test": 32}
TEMPLATE = {"space": {"cell_type": ["lstm", "gru"]}, "budget": {"n_trials": 4, "max_epochs": 2}}


def suite_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "tiny", "tasks": [TINY_ADDING, TINY_COPY], "study": TEMPLATE}
    data.update(overrides)
    return data


def errors_of(data: Any, limits: SpecLimits | None = None, max_tasks: int = 100) -> list[Any]:
    with pytest.raises(SpecError) as info:
        parse_suite(data, limits=limits or SpecLimits(), max_tasks=max_tasks)
    return [(e.loc, e.msg, e.type) for e in info.value.errors]


def test_one_study_per_task_from_the_template() -> None:
    plan = parse_suite(suite_data(description="d"), limits=SpecLimits(), max_tasks=10)
    assert plan.labels == ["adding-t8", "copy-t5"]
    assert [s.name for s in plan.studies] == ["tiny-adding-t8", "tiny-copy-t5"]
    assert [s.task.kind for s in plan.studies] == ["adding", "copy"]
    for spec in plan.studies:
        assert spec.cell_types == ["lstm", "gru"] and spec.budget.n_trials == 4
    stored = plan.stored_spec()
    assert stored["name"] == "tiny" and stored["description"] == "d"
    assert stored["tasks"] == [plan.studies[0].to_json()["task"], plan.studies[1].to_json()["task"]]
    assert "name" not in stored["study"] and "task" not in stored["study"]
    again = parse_suite(stored, limits=SpecLimits(), max_tasks=10)  # what is stored parses back
    assert again.studies == plan.studies


def test_task_names_for_every_kind() -> None:
    tasks = [
        {"kind": "adding", "seq_len": 100},
        {"kind": "copy", "seq_len": 50},
        {"kind": "digits", "mode": "pixels"},
        {"kind": "ucr", "name": "ItalyPowerDemand"},
        {"kind": "forecast", "name": "airline", "window": 12, "horizon": 2},
        {"kind": "chorales"},
        {"kind": "chorales", "max_pieces": 40},
        {"kind": "dataset", "dataset_id": "3f2aabcdef0123456789"},
        {"kind": "dataset", "dataset_id": "unnamed0123456789"},
    ]
    plan = parse_suite(
        suite_data(tasks=tasks),
        limits=SpecLimits(),
        max_tasks=20,
        dataset_names={"3f2aabcdef0123456789": "My Data (v2)!"},
    )
    assert plan.labels == [
        "adding-t100", "copy-t50", "digits-pixels", "italypowerdemand", "airline-w12-h2",
        "chorales", "chorales-p40", "my-data-v2", "dataset-unnamed01234",
    ]  # fmt: skip


def test_tasks_sharing_a_name_are_numbered_in_order() -> None:
    tasks = [
        {"kind": "adding", "seq_len": 8, "n_train": 64},
        {"kind": "adding", "seq_len": 8, "n_train": 128},
        {"kind": "adding", "seq_len": 8, "n_train": 256},
    ]
    plan = parse_suite(suite_data(tasks=tasks), limits=SpecLimits(), max_tasks=10)
    assert plan.labels == ["adding-t8", "adding-t8-2", "adding-t8-3"]


def test_long_names_are_cut_to_a_valid_unique_study_name() -> None:
    name = "a" * 40
    long_names = {"d1": "x" * 100, "d2": "x" * 100 + "y"}
    tasks = [{"kind": "dataset", "dataset_id": "d1"}, {"kind": "dataset", "dataset_id": "d2"}]
    plan = parse_suite(
        suite_data(name=name, tasks=tasks), limits=SpecLimits(), max_tasks=10,
        dataset_names=long_names,
    )  # fmt: skip
    names = [s.name for s in plan.studies]
    assert len(set(names)) == 2
    for study in names:
        assert len(study) == 63 and re.fullmatch(NAME_PATTERN, study)
    assert names[1].endswith("-2")


@pytest.mark.parametrize(
    ("text", "want"), [("My Data (v2)!", "my-data-v2"), ("--a__b--", "a-b"), ("ÄÖ", "")]
)
def test_slug(text: str, want: str) -> None:
    assert slug(text) == want


def test_labels_never_empty() -> None:
    class Odd:
        kind = "???"

    assert task_labels([Odd()], max_length=22) == ["task"]


def test_task_errors_name_index_kind_and_field() -> None:
    tasks = [
        TINY_ADDING,
        {"kind": "adding", "seq_len": 1},
        {"kind": "ucr", "name": "Gun"},
        {"kind": "tcn"},
        {"seq_len": 3},
        7,
        {"kind": "copy", "seq_len": 5, "colour": "red"},
    ]
    errors = errors_of(suite_data(tasks=tasks))
    locs = [loc for loc, _, _ in errors]
    assert locs == [
        ("tasks", 1, "seq_len"),
        ("tasks", 2, "name"),
        ("tasks", 3),
        ("tasks", 4),
        ("tasks", 5),
        ("tasks", 6, "colour"),
    ]
    msgs = [msg for _, msg, _ in errors]
    assert msgs[0].startswith("task 1 (adding): ")
    assert msgs[1].startswith("task 2 (ucr): ") and "'GunPoint'" in msgs[1]
    assert msgs[2].startswith("task 3 (tcn): ") and "'adding'" in msgs[2]
    assert msgs[3].startswith("task 4 (no kind): ")
    assert msgs[4].startswith("task 5 (no kind): ")
    assert msgs[5].startswith("task 6 (copy): ")


def test_template_errors_are_reported_once_under_study() -> None:
    study = {
        "name": "mine",
        "task": TINY_ADDING,
        "space": {"cell_type": ["lstm", "tcn"]},
        "budget": {"n_trials": 0},
    }
    errors = errors_of(suite_data(study=study, tasks=[TINY_ADDING, {"kind": "copy", "seq_len": 0}]))
    locs = [loc for loc, _, _ in errors]
    assert locs == [
        ("study", "name"),
        ("study", "task"),
        ("study", "space", "cell_type"),
        ("study", "budget", "n_trials"),
        ("tasks", 1, "seq_len"),
    ]
    assert "remove study.name" in errors[0][1] and "valid names" in errors[2][1]


def test_template_model_rules_apply() -> None:
    study = {**TEMPLATE, "param_budget": 5000, "space": {"hidden_size": 32}}
    ((loc, msg, _),) = errors_of(suite_data(study=study))
    assert loc == ("study",) and "either space.hidden_size or param_budget" in msg


def test_limits_apply_to_the_template_and_to_each_task() -> None:
    limits = SpecLimits(max_hidden_size=64, max_seq_len=50, max_dataset_size=1000)
    study = {**TEMPLATE, "space": {"hidden_size": 128}}
    tasks = [TINY_ADDING, {"kind": "adding", "seq_len": 60}, {"kind": "ucr", "name": "GunPoint"}]
    errors = errors_of(suite_data(study=study, tasks=tasks), limits)
    assert [(loc, kind) for loc, _, kind in errors] == [
        (("study", "space", "hidden_size"), "limit_exceeded"),
        (("tasks", 1, "seq_len"), "limit_exceeded"),
        (("tasks", 1), "limit_exceeded"),  # 12,000 sequences
        (("tasks", 2, "seq_len"), "limit_exceeded"),  # GunPoint: T = 150
    ]
    assert errors[1][1] == "task 1 (adding): 60 exceeds this server's limit max_seq_len=50"


def test_identical_tasks_are_an_error() -> None:
    ((loc, msg, kind),) = errors_of(suite_data(tasks=[TINY_ADDING, TINY_COPY, dict(TINY_ADDING)]))
    assert (loc, kind) == (("tasks", 2), "duplicate")
    assert msg == "task 2 (adding): the same task as task 0"


@pytest.mark.parametrize(
    ("data", "loc", "text"),
    [
        (suite_data(name="Bad Name"), ("name",), "pattern"),
        (suite_data(name="a" * 41), ("name",), "pattern"),
        (suite_data(tasks=[TINY_ADDING]), ("tasks",), "at least 2"),
        (suite_data(tasks={"kind": "adding"}), ("tasks",), "valid list"),
        (suite_data(study=None), ("study",), "valid dictionary"),
        (suite_data(colour="red"), ("colour",), "Extra inputs"),
        ({"name": "x"}, ("tasks",), "Field required"),
        ([1, 2], (), "valid dictionary"),
    ],
)
def test_shape_errors(data: Any, loc: tuple[Any, ...], text: str) -> None:
    errors = errors_of(data)
    assert any(e_loc == loc and text in msg for e_loc, msg, _ in errors), errors


def test_too_many_tasks_is_refused_before_anything_else() -> None:
    tasks = [{"kind": "adding", "seq_len": 2 + i} for i in range(5)]
    ((loc, msg, kind),) = errors_of(suite_data(tasks=tasks, study=None), max_tasks=4)
    assert (loc, kind) == (("tasks",), "limit_exceeded")
    assert msg == "5 tasks exceed this server's limit max_suite_tasks=4"


@pytest.mark.parametrize("path", ["examples/suite-small.yaml", "examples/suite-full.yaml"])
def test_example_suites_are_valid_under_the_default_limits(path: str) -> None:
    import yaml

    from cellsearch.service.settings import Settings

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / path).read_text())
    settings = Settings()
    plan = parse_suite(data, limits=settings.limits(), max_tasks=settings.max_suite_tasks)
    assert len(plan.studies) >= 8
    assert len({s.task.kind for s in plan.studies}) >= 5
