"""schemathesis over the in-process app: every operation, all default checks, no failure.

Four runs: SQLite and PostgreSQL, each with the API open (no key exists, loopback) and
with keys required (an admin key sent by schemathesis, which also probes every operation
without a key and with a wrong one). A bounded number of examples per operation, and
the coverage phase's valid boundary cases only, keep this in ``make test`` (about 20 s a
run); ``pytest -m fuzz_long`` runs every phase in full and many more examples (README,
Development).

The fuzzer is taught the spec's cross-field rules (tests/service/fuzz_rules.py); every
bound, limit and enum it learns from the published schema. The report operations read a
study with trials and a finished suite made for them (a random name would find nothing,
and the checks would only ever see a 404), so their responses are checked against the
published report schemas.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation.modes import GenerationMode

from cellsearch.search.study.limits import SpecLimits
from tests.service.fuzz_rules import repair_import, repair_spec, repair_suite, valid_upload
from tests.service.test_report_schema import STUDY, SUITE, make_reported

SHORT_EXAMPLES = int(os.environ.get("CELLSEARCH_FUZZ_EXAMPLES", "6"))
LONG_EXAMPLES = int(os.environ.get("CELLSEARCH_FUZZ_LONG_EXAMPLES", "300"))
FAST_SETTINGS = {"heartbeat_interval": 1, "grace_period": 3, "poll_interval": 0.05}
REPORTED = {  # operation -> the study or suite whose report it reads
    "GET /api/v1/studies/{name}/report": STUDY,
    "GET /api/v1/studies/{name}/report.html": STUDY,
    "GET /api/v1/suites/{name}/report": SUITE,
    "GET /api/v1/suites/{name}/report.html": SUITE,
    "GET /api/v1/studies/{name}/export": STUDY,
}


class _Key:
    """The admin key schemathesis sends while keys are required."""

    key: str | None = None

    def get(self, case: Any, ctx: Any) -> str | None:
        return self.key

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _uploaded(client: TestClient, headers: dict[str, str]) -> str:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, x=rng.normal(size=(40, 6, 2)).astype(np.float32), y=np.arange(40) % 2)
    response = client.post(
        "/api/v1/datasets",
        files={"file": ("fuzz.npz", buffer.getvalue())},
        data={"name": "fuzz-data"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture(params=["sqlite-open", "sqlite-keys", "postgres-open", "postgres-keys"])
def fuzz_schema(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The app on a fresh database, its schema loaded by schemathesis, and the rules."""
    from cellsearch.service.access.keys import create_key
    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import Settings, get_settings
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.migrate import upgrade

    # schemathesis 4.32 renames the test node through `_nodeid`, which pytest 9 dropped
    request.node._nodeid = request.node.nodeid
    backend, mode = str(request.param).split("-")
    url = str(request.getfixturevalue(f"{backend}_url"))
    app_settings = Settings(database_url=url, **FAST_SETTINGS)  # type: ignore[arg-type]
    upgrade(app_settings)
    headers: dict[str, str] = {}
    _Key.key = None
    if mode == "keys":
        _, _Key.key = create_key(engine_for(app_settings), name="fuzz-admin", role="admin")
        headers = {"Authorization": f"Bearer {_Key.key}"}
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: app_settings
    with TestClient(app) as client:
        dataset_id = _uploaded(client, headers)
        make_reported(client, headers, app_settings)
        archive = client.get(f"/api/v1/studies/{STUDY}/export", headers=headers).content
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    if request.node.get_closest_marker("fuzz_long") is None:
        _short_phases(schema.config.phases, mode)
    if mode == "keys":
        schema.auth()(_Key)
    limits: SpecLimits = app_settings.limits()

    @schema.hook("map_case")
    def _follow_rules(_context: Any, case: Any) -> Any:
        positive = case.meta is None or case.meta.generation.mode.is_positive
        if positive and case.operation.label in REPORTED:
            case.path_parameters = {
                **(case.path_parameters or {}),
                "name": REPORTED[case.operation.label],
            }
        if not positive or not isinstance(case.body, dict):
            return case
        if case.operation.label in ("POST /api/v1/studies", "POST /api/v1/studies/validate"):
            repair_spec(case.body, limits, dataset_id)
        elif case.operation.label == "POST /api/v1/suites":
            repair_suite(case.body, limits, dataset_id)
        elif case.operation.label == "POST /api/v1/datasets":
            case.body["file"] = valid_upload(case.body.get("kind"))
        elif case.operation.label == "POST /api/v1/studies/import":
            repair_import(case.body, archive, STUDY)
        return case

    yield schema


def _short_phases(phases: Any, mode: str) -> None:
    """The short run's phases: random cases (positive and negative) everywhere, and the
    coverage phase's boundary cases of valid data while the API is open; the long run
    (``-m fuzz_long``) adds the coverage phase's invalid data, which is most of its cases
    (1,500 for POST /studies alone), and the keyed runs' coverage."""
    if mode == "keys":
        phases.coverage.enabled = False
    else:
        phases.coverage.generation.modes = [GenerationMode.POSITIVE]


schema = schemathesis.pytest.from_fixture("fuzz_schema")
FUZZ_SETTINGS = {
    "deadline": None,
    "suppress_health_check": list(HealthCheck),
    "derandomize": True,
    "database": None,
}


@schema.parametrize()
@settings(max_examples=SHORT_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_api_conforms_to_its_schema(case: Any) -> None:
    case.call_and_validate(additional_checks=[positive_data_acceptance])


@pytest.mark.fuzz_long
@schema.parametrize()
@settings(max_examples=LONG_EXAMPLES, **FUZZ_SETTINGS)  # type: ignore[arg-type]
def test_api_conforms_to_its_schema_long(case: Any) -> None:
    case.call_and_validate(additional_checks=[positive_data_acceptance])
