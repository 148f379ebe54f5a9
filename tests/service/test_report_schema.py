"""The report routes publish the real report schemas, and real responses conform to them.

``GET /studies/{name}/report`` serves bytes built once per change (not re-validated by
FastAPI), so the published schema is checked here against a response, on SQLite and
PostgreSQL; the fuzz run (tests/service/test_fuzz.py) checks every report response it
draws. The helpers make a study with trials and a finished suite (the fuzz run reads them).
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
import numpy as np
import optuna
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import update

from cellsearch.search.report.model import StudyReport
from cellsearch.search.report.suite_model import SuiteReport
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, session_scope
from cellsearch.service.store.tables import StudyRecord
from tests.search.test_spec import spec_data
from tests.service.test_suite_spec import suite_data

V1 = "/api/v1"
STUDY, SUITE = "fuzz-report", "fuzz-suite"
CELLS = ("lstm", "gru")


def finished_trials(per_cell: int, seed: int) -> list[FrozenTrial]:
    """Trials as workers record them, cell types in turn: the fourth is pruned, the sixth
    diverged, the others completed."""
    rng = np.random.default_rng(seed)
    dists = {
        "cell_type": CategoricalDistribution(CELLS),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    }
    trials = []
    for i in range(per_cell * len(CELLS)):
        cell = CELLS[i % len(CELLS)]
        value = float(rng.gamma(2.0, 0.05))
        state = {3: TrialState.PRUNED, 5: TrialState.FAIL}.get(i, TrialState.COMPLETE)
        attrs: dict[str, Any] = {"cell_type": cell, "param_count": 100 + i, "seconds": 1.5}
        if state == TrialState.FAIL:
            attrs["failure_kind"] = "diverged"
        trials.append(
            optuna.trial.create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params={"cell_type": cell, "learning_rate": float(10 ** rng.uniform(-4, -1))},
                distributions=dists,
                user_attrs=attrs,
                intermediate_values={0: value + 1.0, 1: value + 0.5},
            )
        )
    return trials


def make_reported(client: TestClient, headers: dict[str, str], settings: Settings) -> None:
    """Study ``fuzz-report`` with 16 trials, and suite ``fuzz-suite`` whose studies all
    completed (their status set in the database: no worker runs here)."""
    url = settings.database_url
    study = spec_data(name=STUDY, space={"cell_type": list(CELLS)}, budget={"n_trials": 16})
    response = client.post(f"{V1}/studies", json=study, headers=headers)
    assert response.status_code == 201, response.text
    optuna.load_study(study_name=STUDY, storage=url).add_trials(finished_trials(8, 0))
    response = client.post(f"{V1}/suites", json=suite_data(name=SUITE), headers=headers)
    assert response.status_code == 201, response.text
    names = [s["study"] for s in response.json()["studies"]]
    for seed, name in enumerate(names):
        optuna.load_study(study_name=name, storage=url).add_trials(finished_trials(2, seed))
    with session_scope(engine_for(settings)) as session:
        session.execute(
            update(StudyRecord).where(StudyRecord.name.in_(names)).values(status="completed")
        )


def _validator(document: dict[str, Any], path: str) -> Any:
    """A validator of the 200 body that ``document`` publishes for ``GET path``."""
    body = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    root = {**body["schema"], "components": document["components"]}
    return jsonschema_rs.validator_for(root)


def test_report_schemas_are_published_and_real_reports_conform(
    api: TestClient, migrated: Settings
) -> None:
    make_reported(api, {}, migrated)
    document = api.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for path, name, model in (
        (f"{V1}/studies/{{name}}/report", STUDY, StudyReport),
        (f"{V1}/suites/{{name}}/report", SUITE, SuiteReport),
    ):
        schema = document["paths"][path]["get"]["responses"]["200"]["content"]
        ref = schema["application/json"]["schema"]["$ref"]
        published = schemas[ref.rsplit("/", 1)[-1]]
        assert published["additionalProperties"] is False  # not a bare object
        assert set(published["required"]) == set(model.model_fields)
        response = api.get(path.replace("{name}", name))
        assert response.status_code == 200, response.text
        data = response.json()
        validator = _validator(document, path)
        assert list(validator.iter_errors(data)) == []
        assert not validator.is_valid({**data, "schema_version": "1"})
        assert not validator.is_valid({**data, "unknown": 1})
        model.model_validate_json(response.content)  # a client parses it


def test_report_parts_are_typed_in_the_schema(api: TestClient, migrated: Settings) -> None:
    make_reported(api, {}, migrated)
    document = api.get("/openapi.json").json()
    validator = _validator(document, f"{V1}/studies/{{name}}/report")
    data = api.get(f"{V1}/studies/{STUDY}/report").json()
    assert data["cells"][0]["best"] is not None and data["comparison"] is not None
    broken = {**data, "cells": [{**data["cells"][0], "best": {"value": "low"}}]}
    assert not validator.is_valid(broken)
    nan = {**data, "comparison": {**data["comparison"], "pairs": [{"p_value": "NaN"}]}}
    assert not validator.is_valid(nan)


def test_the_served_report_is_the_models_json(api: TestClient, migrated: Settings) -> None:
    make_reported(api, {}, migrated)
    body = api.get(f"{V1}/studies/{STUDY}/report").content
    report = StudyReport.model_validate_json(body)
    assert report.to_json().encode() == body  # parsing and writing again changes nothing
    assert report.study.counts.pruned == 1 and report.cell("gru").failures.diverged == 1
