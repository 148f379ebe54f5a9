"""Studies through the client against the real app: typed answers, names of the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cellsearch.client import (
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    Study,
    StudyDetail,
    StudyReport,
    TrialList,
)
from cellsearch.search.report import model
from cellsearch.search.study.spec import StudySpec
from tests.client.conftest import add_trials
from tests.search.test_spec import spec_data

TWO_CELLS = {"space": {"cell_type": ["lstm", "gru"]}, "budget": {"n_trials": 8, "max_epochs": 2}}
ROWS = [(c, "COMPLETE", v) for c in ("lstm", "gru") for v in (0.0001234, 0.01, 0.2, 0.3)]


def test_submit_takes_a_dict_a_file_or_the_spec_model(client: Client, tmp_path: Path) -> None:
    made = client.submit(spec_data())
    assert isinstance(made, StudyDetail)
    assert (made.name, made.n_trials, made.status, made.max_epochs) == ("adding-t20", 4,
                                                                       "running", 2)  # fmt: skip
    assert made.objective == "validation MSE" and made.raw["name"] == "adding-t20"
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_data(name="from-a-file")) + "seed: 1e-0\n")
    assert client.submit(path).name == "from-a-file"
    spec = StudySpec.model_validate(spec_data(name="from-a-model"))
    assert client.submit(spec).spec["name"] == "from-a-model"
    listed = client.list()
    assert all(isinstance(s, Study) for s in listed)
    assert {s.name for s in listed} == {"adding-t20", "from-a-file", "from-a-model"}


def test_invalid_specs_and_taken_names_raise_typed_errors(client: Client) -> None:
    with pytest.raises(InvalidRequest) as info:
        client.submit(spec_data(space={"hidden_size": 5000}))
    assert info.value.field == "space.hidden_size"
    assert "exceeds this server's limit" in info.value.errors[0].msg
    client.submit(spec_data())
    with pytest.raises(Conflict) as taken:
        client.submit(spec_data())
    assert "already exists" in taken.value.detail
    with pytest.raises(NotFound):
        client.get("no-such-study")


def test_validate_stores_nothing(client: Client) -> None:
    checked = client.validate(spec_data())
    assert (checked.name_available, checked.n_trials, checked.trials_per_cell) == (True, 4, 1)
    assert client.list() == []


def test_lifecycle_and_delete(client: Client) -> None:
    client.submit(spec_data())
    assert client.pause("adding-t20").status == "paused"
    assert client.resume("adding-t20").status in ("running", "queued")
    assert client.cancel("adding-t20").status == "cancelled"
    assert client.get("adding-t20").ended
    client.delete("adding-t20")
    with pytest.raises(NotFound):
        client.get("adding-t20")


def test_trials_as_records_filtered_and_as_frames(client: Client, served: Any) -> None:
    client.submit(spec_data(**TWO_CELLS))
    add_trials(served.database_url, "adding-t20", [*ROWS[:3], ("gru", "FAIL", None)])
    trials = client.trials("adding-t20")
    assert isinstance(trials, TrialList) and [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[3].state == "fail" and trials[3].failure_kind == "diverged"
    assert trials[0].learning_curve == {0: 0.5, 1: 0.0001234}
    only = client.trials("adding-t20", state=["complete"], cell_type="lstm")
    assert [t.number for t in only] == [0, 1, 2]
    frame = client.trials("adding-t20", as_frame=True)
    assert list(frame["number"]) == [0, 1, 2, 3] and frame["value"].isna().tolist()[-1]
    assert {"params_cell_type", "params_learning_rate", "param_count", "failure_kind"} <= set(
        frame.columns
    )
    assert frame.loc[2, "params_learning_rate"] == pytest.approx(0.03)
    assert str(frame["started_at"].dt.tz) == "UTC"
    curves = trials.curves_frame()
    assert list(curves.columns) == ["number", "cell_type", "state", "epoch", "value"]
    assert len(curves) == 8 and curves[curves.number == 1].value.tolist() == [0.5, 0.01]
    html = trials._repr_html_()
    assert html.count("<tr>") == 5 and "fail (diverged)" in html


def test_the_report_is_the_typed_report_with_frames_html_and_figures(
    client: Client, served: Any
) -> None:
    client.submit(spec_data(**TWO_CELLS))
    add_trials(served.database_url, "adding-t20", ROWS)
    report = client.report("adding-t20")
    assert isinstance(report, StudyReport) and isinstance(report, model.StudyReport)
    assert report.cell_types == ["lstm", "gru"] and report.verdict
    assert report.pairs == (report.comparison.pairs if report.comparison else [])
    frame = report.to_frame()
    assert list(frame.index) == ["lstm", "gru"]
    assert frame.loc["gru", "best"] == pytest.approx(0.0001234)
    assert frame.loc["lstm", "complete"] == 4
    html = report._repr_html_()
    assert report.study.study_name in html and "<table>" in html
    figures = report.figures()
    assert {"evp", "curves", "scatter", "allocation"} <= set(figures)
    assert figures["curves"].layout.title.text.startswith("Learning curves")
    assert report.raw["study"]["study_name"] == "adding-t20"
    assert client.report_url("adding-t20").endswith("/api/v1/studies/adding-t20/report.html")


def test_catalog_and_who_am_i(client: Client) -> None:
    cells = {c.name: c for c in client.cells()}
    assert {"lstm", "gru", "rnn_tanh"} <= set(cells) and cells["lstm"].fused
    assert {"adding", "copy"} <= {t.kind for t in client.tasks()}
    me = client.whoami()
    assert (me.name, me.role, me.keys_required) == (None, "admin", False)
