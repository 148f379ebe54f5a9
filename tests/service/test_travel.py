"""A study travels: exported as one archive, imported on another server and database.

A small study trained by a real worker (its trials, kept models, draw kinds and learning
curves as workers record them) goes SQLite -> PostgreSQL -> SQLite through the API: the
report stays byte for byte the same, trial numbers and kinds of draw are kept, and the
models download as before. The archive's Optuna part opens with Optuna as it is. The
refusals of damaged or unsafe archives are in test_travel_archive.py, the warm start in
test_travel_warm.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest
from fastapi.testclient import TestClient

from cellsearch.search.record import Attr
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for
from cellsearch.service.store.migrate import upgrade
from cellsearch.service.studies.operations import get_study
from cellsearch.service.travel import importer, layout
from tests.conftest import app_client, auth
from tests.service.test_artifacts import drain, submit, worker_of

V1 = "/api/v1"
NAME = "trip"


def server(url: str, folder: Path) -> Settings:
    """Settings of one server: its database, its own artifact store, one model a cell."""
    settings = Settings(
        database_url=url,
        heartbeat_interval=1,
        grace_period=3,
        poll_interval=0.05,
        artifact_dir=str(folder / "artifacts"),
        keep_top_k=1,
        checkpoint_every_s=1000.0,
    )
    upgrade(settings)
    return settings


def trained(settings: Settings, name: str = NAME) -> None:
    """A finished study of 4 trials (tpe: every draw is one of the random phase)."""
    submit(settings, name, sampler="tpe")
    drain(worker_of(settings))


def exported(client: TestClient, name: str = NAME, **headers: str) -> bytes:
    response = client.get(f"{V1}/studies/{name}/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert f'filename="{name}{layout.EXTENSION}"' in response.headers["content-disposition"]
    return response.content


def imported(client: TestClient, archive: bytes, **form: str) -> Any:
    files = {"file": ("study.cellsearch.zip", archive)}
    response = client.post(f"{V1}/studies/import", files=files, data=form)
    assert response.status_code == 201, response.text
    return response.json()


def seen(client: TestClient, name: str = NAME) -> dict[str, Any]:
    """What a user reads of a study: its report, trials and kept models (bytes)."""
    report = client.get(f"{V1}/studies/{name}/report")
    trials = client.get(f"{V1}/studies/{name}/trials", params={"limit": 500}).json()["items"]
    models = client.get(f"{V1}/studies/{name}/models").json()
    files = {m["trial_number"]: client.get(V1 + m["download"]).content for m in models}
    return {"report": report.content, "trials": trials, "models": files}


@dataclass(frozen=True)
class Origin:
    """A trained study on a SQLite server, what a user sees of it, and its archive."""

    settings: Settings
    seen: dict[str, Any]
    archive: bytes


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Origin:
    folder = tmp_path_factory.mktemp("origin")
    settings = server(f"sqlite:///{folder}/origin.db", folder)
    trained(settings)
    with app_client(settings) as client:
        return Origin(settings, seen(client), exported(client))


@pytest.mark.postgres
def test_sqlite_to_postgres_to_sqlite_keeps_report_trials_and_models(
    origin: Origin, postgres_url: str, tmp_path: Path
) -> None:
    with app_client(server(postgres_url, tmp_path / "second")) as client:
        made = imported(client, origin.archive)
        facts = (made["name"], made["status"], made["trials"], made["models"])
        assert facts == (NAME, "completed", 4, 2)
        assert seen(client) == origin.seen
        archive = exported(client)
    with app_client(server(f"sqlite:///{tmp_path}/third.db", tmp_path / "third")) as client:
        imported(client, archive)
        back = seen(client)
    assert back == origin.seen
    assert json.loads(back["report"])["study"]["status"] == "completed"
    assert [t["number"] for t in back["trials"]] == [0, 1, 2, 3]
    assert [t["draw"] for t in back["trials"]] == ["random"] * 4
    assert len(back["models"]) == 2 and all(len(f) > 100 for f in back["models"].values())


def test_the_archive_holds_what_the_issue_lists(origin: Origin, tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(origin.archive)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read(layout.MANIFEST))
        study = json.loads(zf.read(layout.STUDY))
        assert zf.read(layout.REPORT) == origin.seen["report"]  # the report as built
        zf.extractall(tmp_path / "unpacked")
    models = {layout.model_file(m["id"]) for m in study["models"]}
    assert names == {layout.MANIFEST, layout.STUDY, layout.REPORT, layout.OPTUNA} | models
    assert set(manifest["files"]) == names - {layout.MANIFEST}
    assert manifest["format"] == layout.FORMAT and manifest["study"] == NAME
    assert {"cellsearch", "optuna", "optuna_datetimes", "exported_at"} <= set(manifest)
    assert study["spec"]["name"] == NAME and study["status"] == "completed"
    # the Optuna part opens as it is, as optuna-dashboard opens it: an Optuna storage
    url = f"sqlite:///{tmp_path}/unpacked/{layout.OPTUNA}"
    loaded = optuna.load_study(study_name=NAME, storage=url)
    trials = loaded.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert all(len(t.intermediate_values) == 3 and Attr.SEED in t.user_attrs for t in trials)
    listed = optuna.artifacts.get_all_artifact_meta(loaded)
    assert {layout.model_file(m.artifact_id) for m in listed} == models
    # optuna-dashboard sqlite:///optuna.sqlite3 --artifact-dir models: the study, its models
    models_dir = tmp_path / "unpacked" / "models"
    store = optuna.artifacts.FileSystemArtifactStore(str(models_dir))
    app = optuna_dashboard.wsgi(url, artifact_store=store)
    shown = json.loads(dashboard_get(app, f"/api/studies/{loaded._study_id}"))
    assert len(shown["trials"]) == 4 and len(shown["artifacts"]) == len(models)
    first = shown["artifacts"][0]["artifact_id"]
    served = dashboard_get(app, f"/artifacts/{loaded._study_id}/{first}")
    assert served == (models_dir / first).read_bytes()


def dashboard_get(app: Any, path: str) -> bytes:
    """The body optuna-dashboard's WSGI app answers ``GET path`` with."""
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    return b"".join(app(environ, lambda *_response: None))


def test_a_name_clash_is_409_unless_a_new_name_is_given(origin: Origin) -> None:
    with app_client(origin.settings) as client:
        before, archive = origin.seen, origin.archive
        response = client.post(f"{V1}/studies/import", files={"file": ("a.zip", archive)})
        assert response.status_code == 409
        assert "--name" in response.json()["detail"]
        made = imported(client, archive, name="trip-copy")
        assert made["name"] == "trip-copy"
        record = get_study(engine=engine_for(origin.settings), name="trip-copy")
        assert record.dealt == 4  # past every deal its trials hold: new ones come after
        copy = seen(client, "trip-copy")
        assert copy["models"] == before["models"]  # new artifact ids, the same files
        assert [t["number"] for t in copy["trials"]] == [t["number"] for t in before["trials"]]
        report = json.loads(copy["report"])
        assert report["study"]["study_name"] == "trip-copy"
        assert report["cells"] == json.loads(before["report"])["cells"]
        # the copy is a study of its own: deleting it leaves the original whole
        assert client.delete(f"{V1}/studies/trip-copy").status_code == 204
        assert seen(client) == before


def test_an_imported_deal_that_is_not_a_whole_number_leaves_no_counter() -> None:
    def trial(deal: object) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(value=1.0, user_attrs={Attr.DEAL: deal})

    assert importer._dealt([trial(0), trial(5), optuna.trial.create_trial(value=1.0)]) == 6
    assert importer._dealt([]) == 0
    assert importer._dealt([trial(0), trial("5")]) is None  # deals picked by reading them
    assert importer._dealt([trial(True)]) is None


def test_export_needs_a_reader_and_import_a_submitter(
    api: TestClient, keys: dict[str, str], migrated: Settings
) -> None:
    submit(migrated, NAME)  # no trial yet: an archive of an empty study
    assert api.get(f"{V1}/studies/{NAME}/export").status_code == 401
    archive = exported(api, **auth(keys["reader"]))
    files = {"file": ("a.zip", archive)}
    response = api.post(f"{V1}/studies/import", files=files, headers=auth(keys["reader"]))
    assert response.status_code == 403
    response = api.post(
        f"{V1}/studies/import", files=files, data={"name": "mine"}, headers=auth(keys["submitter"])
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "paused"  # it was running: resume it to go on here
    study = api.get(f"{V1}/studies/mine", headers=auth(keys["reader"])).json()
    assert study["created_by"] == "submitter"
    resumed = api.post(f"{V1}/studies/mine/resume", headers=auth(keys["submitter"]))
    assert resumed.status_code == 200


def test_a_study_with_a_running_trial_is_not_exported(api: TestClient, migrated: Settings) -> None:
    study = submit(migrated, NAME)
    study.ask()
    response = api.get(f"{V1}/studies/{NAME}/export")
    assert response.status_code == 409
    assert "running" in response.json()["detail"]
    assert api.get(f"{V1}/studies/nope/export").status_code == 404


def test_import_reserves_its_path_as_a_study_name(api: TestClient) -> None:
    from tests.search.test_spec import spec_data

    response = api.post(f"{V1}/studies", json=spec_data(name="import"))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "name"]
