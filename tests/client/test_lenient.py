"""A report from a newer server: fields this client does not know are dropped, not fatal."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cellsearch.client import Client, StudyReport, SuiteReport, UnreadableResponse, lenient
from tests.client.conftest import add_trials
from tests.search.test_spec import spec_data
from tests.service.test_suite_spec import suite_data

ROWS = [(c, "COMPLETE", v) for c in ("lstm", "gru") for v in (0.01, 0.02, 0.2)]


@pytest.fixture
def report_json(client: Client, served: Any) -> dict[str, Any]:
    client.submit(spec_data(space={"cell_type": ["lstm", "gru"]},
                            budget={"n_trials": 6, "max_epochs": 2}))  # fmt: skip
    add_trials(served.database_url, "adding-t20", ROWS)
    return dict(client.request("GET", "/studies/adding-t20/report"))


def test_new_fields_at_any_depth_are_dropped_with_one_warning(
    report_json: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lenient, "_warned", set())
    newer = copy.deepcopy(report_json)
    newer["added_section"] = {"x": 1}
    newer["study"]["added_fact"] = 2
    newer["cells"][1]["best"]["added_stat"] = 3
    if newer["comparison"] is not None:
        newer["comparison"]["pairs"][0]["added_p"] = 0.5
    with pytest.warns(UserWarning) as caught:
        report = StudyReport.parse(newer)
    said = str(caught[0].message)
    for path in ("added_section", "study.added_fact", "cells.1.best.added_stat"):
        assert path in said
    assert report.model_dump(mode="json") == StudyReport.parse(report_json).model_dump(mode="json")
    assert report.raw["added_section"] == {"x": 1}  # kept as it came


def test_a_field_the_client_needs_is_still_required(report_json: dict[str, Any]) -> None:
    older = copy.deepcopy(report_json)
    del older["study"]["metric"]
    with pytest.raises(UnreadableResponse, match=r"study\.metric"):
        StudyReport.parse(older)


def test_the_server_models_stay_strict(report_json: dict[str, Any]) -> None:
    from pydantic import ValidationError

    from cellsearch.search.report.model import StudyReport as ServerReport

    with pytest.raises(ValidationError):
        ServerReport.model_validate({**report_json, "added_section": 1})


def test_suite_reports_are_read_the_same_way(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lenient, "_warned", set())
    name = suite_data()["name"]
    client.suites.submit(suite_data())
    client.suites.cancel(name)
    data = copy.deepcopy(client.request("GET", f"/suites/{name}/report"))
    data["suite"]["added"] = True
    with pytest.warns(UserWarning, match=r"suite\.added"):
        report = SuiteReport.parse(data)
    assert report.suite.name == name and f"<h3>{name}</h3>" in report._repr_html_()
