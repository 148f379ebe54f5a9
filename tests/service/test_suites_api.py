"""Suites through the REST API: every endpoint and every 422/409/404, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from cellsearch.service.suites import operations as suite_ops
from tests.service.test_datasets import classification_npz, upload
from tests.service.test_suite_spec import TINY_ADDING, TINY_COPY, suite_data

V1 = "/api/v1"
NAMES = ["tiny-adding-t8", "tiny-copy-t5"]


def create(api: TestClient, **overrides: Any) -> dict[str, Any]:
    response = api.post(f"{V1}/suites", json=suite_data(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def assert_nothing_stored(api: TestClient, settings: Any, studies: list[str] | None = None) -> None:
    assert api.get(f"{V1}/suites").json()["total"] == 0
    names = [s["name"] for s in api.get(f"{V1}/studies").json()["items"]]
    assert names == (studies or [])
    assert sorted(optuna.get_all_study_names(settings.database_url)) == sorted(studies or [])


def test_create_makes_ordinary_studies_and_shows_progress(api: TestClient) -> None:
    suite = create(api, description="two tiny tasks")
    assert (suite["name"], suite["status"], suite["n_tasks"]) == ("tiny", "running", 2)
    assert (suite["finished"], suite["n_trials"]) == (0, 8)
    assert suite["cell_types"] == ["lstm", "gru"] and suite["description"] == "two tiny tasks"
    assert suite["studies_by_status"] == {"running": 2}
    assert [(s["task"], s["study"], s["kind"], s["status"]) for s in suite["studies"]] == [
        ("adding-t8", "tiny-adding-t8", "adding", "running"),
        ("copy-t5", "tiny-copy-t5", "copy", "running"),
    ]
    assert suite["spec"]["tasks"][0]["seq_len"] == 8
    studies = api.get(f"{V1}/studies").json()["items"]
    assert sorted(s["name"] for s in studies) == NAMES
    one = api.get(f"{V1}/studies/tiny-copy-t5").json()
    assert one["spec"]["task"]["kind"] == "copy" and one["spec"]["budget"]["n_trials"] == 4
    listed = api.get(f"{V1}/suites").json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "tiny"
    assert api.get(f"{V1}/suites/tiny").json()["studies"] == suite["studies"]


def test_list_pages_newest_first(api: TestClient) -> None:
    create(api)
    create(api, name="other")
    page = api.get(f"{V1}/suites", params={"limit": 1}).json()
    assert (page["total"], [s["name"] for s in page["items"]]) == (2, ["other"])
    page = api.get(f"{V1}/suites", params={"limit": 1, "offset": 1}).json()
    assert [s["name"] for s in page["items"]] == ["tiny"]


def test_invalid_task_is_422_naming_index_kind_and_field(api: TestClient, migrated: Any) -> None:
    bad = suite_data(tasks=[TINY_ADDING, {"kind": "ucr", "name": "Gun"}])
    response = api.post(f"{V1}/suites", json=bad)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "tasks", 1, "name"]
    assert error["msg"].startswith("task 1 (ucr): ")
    assert_nothing_stored(api, migrated)


def test_invalid_template_is_422_under_study(api: TestClient, migrated: Any) -> None:
    study = {"space": {"cell_type": ["lstm", "tcn"]}, "budget": {"n_trials": 4}}
    response = api.post(f"{V1}/suites", json=suite_data(study=study))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "study", "space", "cell_type"]
    assert_nothing_stored(api, migrated)


def test_limits_are_422_for_the_template_and_each_task(api: TestClient, migrated: Any) -> None:
    study = {**suite_data()["study"], "space": {"hidden_size": 5000}}
    tasks = [TINY_ADDING, {**TINY_COPY, "seq_len": 6000}]
    response = api.post(f"{V1}/suites", json=suite_data(study=study, tasks=tasks))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [
        ["body", "study", "space", "hidden_size"],
        ["body", "tasks", 1, "seq_len"],
    ]
    assert "max_hidden_size=1024" in detail[0]["msg"] and "max_seq_len=5000" in detail[1]["msg"]
    assert_nothing_stored(api, migrated)


def test_too_many_tasks_is_422(api: TestClient, migrated: Any) -> None:
    from cellsearch.service.settings import get_settings

    api.app.dependency_overrides[get_settings] = lambda: migrated.model_copy(  # type: ignore[attr-defined]
        update={"max_suite_tasks": 2}
    )
    tasks = [TINY_ADDING, TINY_COPY, {"kind": "digits"}]
    response = api.post(f"{V1}/suites", json=suite_data(tasks=tasks))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "tasks"] and "max_suite_tasks=2" in error["msg"]
    assert_nothing_stored(api, migrated)


def test_body_that_is_not_an_object_is_422(api: TestClient, migrated: Any) -> None:
    assert api.post(f"{V1}/suites", json=[1, 2]).status_code == 422
    assert api.post(f"{V1}/suites", content=b"{", headers={"content-type": "application/json"})
    assert_nothing_stored(api, migrated)


def test_unknown_dataset_is_422_and_a_known_one_names_the_task(
    api: TestClient, migrated: Any
) -> None:
    tasks = [TINY_ADDING, {"kind": "dataset", "dataset_id": "missing"}]
    response = api.post(f"{V1}/suites", json=suite_data(tasks=tasks))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "tasks", 1, "dataset_id"]
    assert error["msg"].startswith("task 1 (dataset): unknown dataset 'missing'")
    assert_nothing_stored(api, migrated)
    ds = upload(api, classification_npz(), name="Toy_Set.v2").json()
    suite = create(api, tasks=[TINY_ADDING, {"kind": "dataset", "dataset_id": ds["id"]}])
    assert [s["study"] for s in suite["studies"]] == ["tiny-adding-t8", "tiny-toy-set-v2"]
    refused = api.delete(f"{V1}/datasets/{ds['id']}")
    assert refused.status_code == 409 and "tiny-toy-set-v2" in refused.json()["detail"]


def test_dataset_over_the_limits_is_422(api: TestClient, migrated: Any) -> None:
    from cellsearch.service.settings import get_settings

    ds = upload(api, classification_npz()).json()  # 60 sequences of 12 steps
    api.app.dependency_overrides[get_settings] = lambda: migrated.model_copy(  # type: ignore[attr-defined]
        update={"max_seq_len": 10}
    )
    tasks = [{"kind": "dataset", "dataset_id": ds["id"]}, {**TINY_COPY, "seq_len": 1}]
    response = api.post(f"{V1}/suites", json=suite_data(tasks=tasks))
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [e["loc"] for e in detail] == [
        ["body", "tasks", 0, "dataset_id"],
        ["body", "tasks", 1, "seq_len"],  # copy's input is T + 20 = 21 steps
    ]


def test_bf16_with_only_cpu_workers_is_422_under_study(api: TestClient, migrated: Any) -> None:
    from cellsearch.search.worker.protocol import WorkerInfo
    from cellsearch.service.store.db import engine_for
    from cellsearch.service.workers.roster import SqlWorkerRegistry

    registry = SqlWorkerRegistry(engine_for(migrated), grace_period=migrated.grace_period)
    registry.beat(WorkerInfo("w1", "host", 1, "cpu"))
    study = {**suite_data()["study"], "precision": "bf16"}
    response = api.post(f"{V1}/suites", json=suite_data(study=study))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "study", "precision"]
    assert_nothing_stored(api, migrated)


def test_taken_suite_name_is_409(api: TestClient) -> None:
    create(api)
    response = api.post(f"{V1}/suites", json=suite_data(tasks=[TINY_COPY, {"kind": "digits"}]))
    assert response.status_code == 409
    assert response.json()["detail"] == "suite 'tiny' already exists"
    assert api.get(f"{V1}/studies").json()["total"] == 2


def test_taken_study_name_is_409_and_creates_nothing(api: TestClient, migrated: Any) -> None:
    from tests.search.test_spec import spec_data

    alone = spec_data(name="tiny-copy-t5", task=TINY_COPY)
    assert api.post(f"{V1}/studies", json=alone).status_code == 201
    response = api.post(f"{V1}/suites", json=suite_data())
    assert response.status_code == 409
    assert "tiny-copy-t5" in response.json()["detail"]
    assert_nothing_stored(api, migrated, ["tiny-copy-t5"])


def test_bare_optuna_study_with_a_generated_name_is_409(api: TestClient, migrated: Any) -> None:
    optuna.create_study(study_name="tiny-adding-t8", storage=migrated.database_url)
    response = api.post(f"{V1}/suites", json=suite_data())
    assert response.status_code == 409 and "tiny-adding-t8" in response.json()["detail"]
    assert api.get(f"{V1}/suites").json()["total"] == 0
    assert optuna.get_all_study_names(migrated.database_url) == ["tiny-adding-t8"]


def test_a_failure_while_writing_leaves_nothing_behind(
    api: TestClient, migrated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(suite_ops, "_write_records", broken)
    with TestClient(api.app, raise_server_exceptions=False) as client:
        assert client.post(f"{V1}/suites", json=suite_data()).status_code == 500
    assert_nothing_stored(api, migrated)


def test_a_study_made_meanwhile_is_409_and_leaves_nothing_behind(
    api: TestClient, migrated: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = optuna.create_study

    def racing(*, study_name: str, **kwargs: Any) -> Any:
        if study_name == "tiny-copy-t5":  # another client takes the name after the check
            real(study_name=study_name, storage=kwargs["storage"])
        return real(study_name=study_name, **kwargs)

    monkeypatch.setattr(suite_ops.optuna, "create_study", racing)
    response = api.post(f"{V1}/suites", json=suite_data())
    assert response.status_code == 409 and "created meanwhile" in response.json()["detail"]
    assert api.get(f"{V1}/suites").json()["total"] == 0
    assert optuna.get_all_study_names(migrated.database_url) == ["tiny-copy-t5"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/suites/nope"),
        ("post", "/suites/nope/pause"),
        ("post", "/suites/nope/resume"),
        ("post", "/suites/nope/cancel"),
        ("delete", "/suites/nope"),
        ("get", "/suites/nope/report"),
        ("get", "/suites/nope/report.html"),
    ],
)
def test_unknown_suite_is_404(api: TestClient, method: str, path: str) -> None:
    response = api.request(method.upper(), f"{V1}{path}")
    assert response.status_code == 404
    assert response.json()["detail"] == "suite 'nope' not found"


def test_unknown_action_is_404(api: TestClient) -> None:
    create(api)
    assert api.post(f"{V1}/suites/tiny/restart").status_code == 404  # no such route


def test_lifecycle_applies_to_every_study(api: TestClient) -> None:
    create(api)
    assert api.post(f"{V1}/suites/tiny/resume").status_code == 409
    paused = api.post(f"{V1}/suites/tiny/pause").json()
    assert paused["status"] == "paused" and paused["studies_by_status"] == {"paused": 2}
    again = api.post(f"{V1}/suites/tiny/pause")
    assert again.status_code == 409
    assert again.json()["detail"] == "cannot pause suite 'tiny': its studies are paused"
    assert api.post(f"{V1}/suites/tiny/resume").json()["status"] == "running"
    # A study paused on its own: cancelling the suite still reaches it.
    assert api.post(f"{V1}/studies/tiny-copy-t5/pause").status_code == 200
    cancelled = api.post(f"{V1}/suites/tiny/cancel").json()
    assert cancelled["studies_by_status"] == {"cancelled": 2}
    assert cancelled["status"] == "cancelled"
    assert api.post(f"{V1}/suites/tiny/cancel").status_code == 409
    assert api.post(f"{V1}/suites/tiny/resume").status_code == 409


def test_delete_removes_the_suite_and_its_studies_only(api: TestClient, migrated: Any) -> None:
    from tests.search.test_spec import spec_data

    create(api)
    assert api.post(f"{V1}/studies", json=spec_data(name="alone")).status_code == 201
    assert api.delete(f"{V1}/suites/tiny").status_code == 204
    assert api.get(f"{V1}/suites/tiny").status_code == 404
    assert [s["name"] for s in api.get(f"{V1}/studies").json()["items"]] == ["alone"]
    assert optuna.get_all_study_names(migrated.database_url) == ["alone"]
    assert api.delete(f"{V1}/suites/tiny").status_code == 404
    create(api)  # the name is free again
    assert api.get(f"{V1}/suites").json()["total"] == 1


def test_a_study_deleted_on_its_own_shows_as_missing(api: TestClient, migrated: Any) -> None:
    from tests.search.test_spec import spec_data

    create(api)
    assert api.delete(f"{V1}/studies/tiny-copy-t5").status_code == 204
    # a new study of the same name is not the suite's
    assert api.post(f"{V1}/studies", json=spec_data(name="tiny-copy-t5")).status_code == 201
    suite = api.get(f"{V1}/suites/tiny").json()
    assert [s["status"] for s in suite["studies"]] == ["running", "missing"]
    assert suite["studies_by_status"] == {"running": 1, "missing": 1}
    report = api.get(f"{V1}/suites/tiny/report").json()
    rows = {r["task"]: r for r in report["tasks"]}
    assert rows["copy-t5"]["reason"] == "its study was deleted"
    assert api.post(f"{V1}/suites/tiny/cancel").status_code == 200
    assert api.get(f"{V1}/studies/tiny-copy-t5").json()["status"] == "running"  # not touched
    assert api.delete(f"{V1}/suites/tiny").status_code == 204
    assert optuna.get_all_study_names(migrated.database_url) == ["tiny-copy-t5"]


def test_report_of_a_suite_that_has_not_finished(api: TestClient) -> None:
    create(api)
    report = api.get(f"{V1}/suites/tiny/report").json()
    assert report["verdict"].startswith("no finished study yet")
    assert [r["included"] for r in report["tasks"]] == [False, False]
    page = api.get(f"{V1}/suites/tiny/report.html")
    assert page.status_code == 200 and "No finished study yet" in page.text


def test_suite_spec_schema(api: TestClient) -> None:
    schema = api.get(f"{V1}/suite-spec-schema").json()
    assert set(schema["properties"]) == {"name", "description", "tasks", "study"}
    assert "StudyTemplate" in schema["$defs"]
    template = schema["$defs"]["StudyTemplate"]["properties"]
    assert "name" not in template and "task" not in template and "budget" in template
    assert "/api/v1/suites" in api.get("/openapi.json").json()["paths"]
