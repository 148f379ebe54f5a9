"""A warm start through the service: checked on submit, seeds kept with the study, shown to
its adaptive draws only, never trials of it, and carried by an export to a server where
the studies it was seeded from do not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from cellsearch.search.record import Attr
from cellsearch.search.study import seeding
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.worker.deals import record_deal, take_search_trial
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.studies.operations import get_study, trial_counts
from tests.conftest import app_client
from tests.search.test_spec import spec_data
from tests.search.test_warm_start import SPACE, source_trials
from tests.service.test_travel import exported, imported, server

V1 = "/api/v1"


def cold(**changes: Any) -> dict[str, Any]:
    return spec_data(name="cold", space=SPACE, budget={"n_trials": 60}, **changes)


def warm(**changes: Any) -> dict[str, Any]:
    data = spec_data(name="warm", space=SPACE, budget={"n_trials": 60})
    return {**data, "warm_start": {"from": ["cold"], "top_k": 4}, **changes}


def with_source(client: TestClient, settings: Settings) -> None:
    """Study ``cold`` with 20 completed trials of each cell type (added directly)."""
    assert client.post(f"{V1}/studies", json=cold()).status_code == 201
    study = optuna.load_study(study_name="cold", storage=optuna_storage(settings))
    study.add_trials(source_trials(parse_spec(cold()), 20))


def take(settings: Settings, name: str, index: int) -> optuna.trial.FrozenTrial:
    """Claim ``index`` of study ``name`` taken as a worker takes it (its deal recorded)."""
    storage = optuna_storage(settings)
    study = optuna.load_study(study_name=name, storage=storage)
    spec = get_study(engine=engine_for(settings), name=name).study_spec()
    taken = take_search_trial(study, storage, spec, index, grace_period=3, fresh=True)
    trial = record_deal(study, spec, taken, index, grace_period=3)
    return storage.get_trial(trial._trial_id)


def test_seeds_are_kept_and_shown_to_adaptive_draws_only(
    api: TestClient, migrated: Settings
) -> None:
    with_source(api, migrated)
    assert api.post(f"{V1}/studies/validate", json=warm()).status_code == 200
    assert api.post(f"{V1}/studies", json=warm()).status_code == 201
    study = optuna.load_study(study_name="warm", storage=optuna_storage(migrated))
    seeds = seeding.seeds_of(study, parse_spec(warm()))
    assert seeds is not None and seeds.per_cell() == {"lstm": 4, "gru": 4}
    first = take(migrated, "warm", 0)  # a random draw
    assert first.user_attrs[Attr.DRAW] == "random" and Attr.WARM_START not in first.user_attrs
    later = take(migrated, "warm", 40)  # round 20: an adaptive draw
    assert later.user_attrs[Attr.DRAW] == "adaptive" and later.user_attrs[Attr.WARM_START] == 4
    assert later.user_attrs[Attr.DEAL] == 40
    counts = trial_counts(engine=engine_for(migrated), names=["warm"])["warm"]
    assert (counts.running, counts.finished) == (2, 0)  # the seeds are no trials of it
    trial = api.get(f"{V1}/studies/warm/trials").json()["items"][1]
    assert trial["warm_start"] == 4
    # deleting the source changes nothing: the seeds were kept
    assert api.delete(f"{V1}/studies/cold").status_code == 204
    assert take(migrated, "warm", 41).user_attrs[Attr.WARM_START] == 4


@pytest.mark.parametrize(
    ("spec", "loc", "words"),
    [
        (warm(warm_start={"from": ["nowhere"]}), ["body", "warm_start", "from"], "no study"),
        (warm(space={**SPACE, "dropout": [0.0, 0.2]}), ["body", "warm_start", "from"], "dropout"),
        (warm(budget={"n_trials": 20}), ["body", "warm_start"], "random phase"),
        (warm(sampler="random"), ["body", "warm_start"], "tpe or gp"),
    ],
)
def test_a_warm_start_that_cannot_be_made_is_a_422_naming_the_field(
    api: TestClient, migrated: Settings, spec: dict[str, Any], loc: list[str], words: str
) -> None:
    with_source(api, migrated)
    for path in ("/studies", "/studies/validate"):
        response = api.post(V1 + path, json=spec)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail[0]["loc"] == loc and words in detail[0]["msg"], detail


def test_a_warm_started_study_travels_with_its_seeds(sqlite_url: str, tmp_path: Path) -> None:
    origin = server(sqlite_url, tmp_path / "origin")
    with app_client(origin) as client:
        with_source(client, origin)
        assert client.post(f"{V1}/studies", json=warm()).status_code == 201
        archive = exported(client, "warm")
    elsewhere = server(f"sqlite:///{tmp_path}/elsewhere.db", tmp_path / "elsewhere")
    with app_client(elsewhere) as client:
        imported(client, archive)  # study "cold" does not exist here
        assert client.post(f"{V1}/studies/warm/resume").status_code == 200
    assert take(elsewhere, "warm", 40).user_attrs[Attr.WARM_START] == 4


def test_a_source_whose_objective_measures_another_quantity_is_refused(
    api: TestClient, migrated: Settings
) -> None:
    """Both minimise val_loss, but one is an MSE and the other a cross-entropy."""
    digits = {"kind": "digits"}
    assert api.post(f"{V1}/studies", json=cold(task=digits)).status_code == 201
    response = api.post(f"{V1}/studies/validate", json=warm())
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "warm_start", "from"]
    assert "cross-entropy" in detail[0]["msg"] and "MSE" in detail[0]["msg"]
