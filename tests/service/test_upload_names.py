"""An upload has its baseline and its metric's name everywhere (issue 30, item 4): the
report, the dashboard and a suite's studies, for a classification data set whose kind is
inferred from its data and a study that maximises its accuracy."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import optuna
import pytest
from fastapi.testclient import TestClient
from optuna.distributions import BaseDistribution, CategoricalDistribution

from cellsearch.search.report.model import StudyReport
from cellsearch.search.tasks.baselines import forget_measured
from cellsearch.service.settings import Settings
from tests.search.test_spec import spec_data
from tests.service.test_suite_spec import suite_data

V1 = "/api/v1"


def two_sines(n: int = 300, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """Two classes of noisy sine waves (two of class 0 for one of class 1)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    t = np.linspace(0, 4 * math.pi, 40)
    x = np.sin(t[None, :] * (1 + y[:, None])) + rng.normal(0, 0.5, size=(n, 40))
    buffer = io.BytesIO()
    np.savez(buffer, x=x[:, :, None].astype(np.float32), y=y)
    return buffer.getvalue(), y


def test_an_inferred_classification_upload_names_its_accuracy_and_baseline(
    api: TestClient, migrated: Settings
) -> None:
    forget_measured()
    content, _ = two_sines()
    uploaded = api.post(f"{V1}/datasets", files={"file": ("sines.npz", content)},
                        data={"name": "sines"})  # fmt: skip
    assert uploaded.status_code == 201 and uploaded.json()["kind"] == "classification"
    spec = spec_data(
        name="sines",
        task={"kind": "dataset", "dataset_id": uploaded.json()["id"]},  # kind inferred
        objective={"metric": "val_metric", "direction": "maximize"},
        space={"cell_type": ["lstm", "gru"]},
    )
    assert api.post(f"{V1}/studies", json=spec).status_code == 201
    study = optuna.load_study(study_name="sines", storage=migrated.database_url)
    assert study.metric_names == ["validation accuracy"]
    assert study.user_attrs["objective"] == "validation accuracy (maximize)"
    dist: dict[str, BaseDistribution] = {"cell_type": CategoricalDistribution(["lstm", "gru"])}
    for i, value in enumerate([0.95, 0.9, 0.7, 0.68]):
        cell = ("lstm", "gru")[i % 2]
        study.add_trial(optuna.trial.create_trial(
            value=value, params={"cell_type": cell}, distributions=dist,
            user_attrs={"cell_type": cell},
        ))  # fmt: skip
    report = StudyReport.model_validate(api.get(f"{V1}/studies/sines/report").json())
    facts = report.study
    assert facts.metric_label == "validation accuracy"
    assert (facts.metric_low, facts.metric_high) == (0.0, 1.0)
    # the majority class (0, two thirds of the series) of the training split, scored on
    # the validation split (stratified: about two thirds as well)
    assert facts.baseline == pytest.approx(2 / 3, abs=0.03)
    assert "majority class" in str(facts.baseline_description)
    assert report.cell("lstm").learned is True  # 0.95 is 85% of the way from 2/3 to 1
    assert report.cell("gru").n_beat_baseline == 1  # 0.68 is 4%: not learned
    page = api.get(f"{V1}/studies/sines/report.html").text
    assert "validation accuracy" in page and "validation metric" not in page
    # the study list and the study's own page name it too (not "validation metric")
    (listed,) = [s for s in api.get(f"{V1}/studies").json()["items"] if s["name"] == "sines"]
    assert listed["objective"] == "validation accuracy"
    assert api.get(f"{V1}/studies/sines").json()["objective"] == "validation accuracy"


def test_a_suites_studies_are_named_for_the_dashboard(api: TestClient, migrated: Settings) -> None:
    data: dict[str, Any] = suite_data()
    assert api.post(f"{V1}/suites", json=data).status_code == 201
    names = {
        name: optuna.load_study(study_name=name, storage=migrated.database_url).metric_names
        for name in ("tiny-adding-t8", "tiny-copy-t5")
    }
    assert names == {
        "tiny-adding-t8": ["validation MSE"],
        "tiny-copy-t5": ["validation cross-entropy"],
    }
