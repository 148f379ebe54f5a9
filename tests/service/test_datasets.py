"""Uploaded data sets through the API: validation, storage, use by a study, deletion."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
import torch
from fastapi.testclient import TestClient

from cellsearch.search.worker.loop import Worker
from cellsearch.service.datasets import operations as datasets_ops
from cellsearch.service.errors import Conflict
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.studies import operations as studies_ops
from cellsearch.service.suites import operations as suites_ops
from cellsearch.service.workers.runner import sql_backend

V1 = "/api/v1"


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def classification_npz(n: int = 60, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12, 2)).astype(np.float32) + y[:, None, None]
    return npz(x=x, y=y)


def upload(api: TestClient, content: bytes, name: str = "toy", filename: str = "toy.npz",
           **form: str) -> Any:  # fmt: skip
    return api.post(
        f"{V1}/datasets", files={"file": (filename, content)}, data={"name": name, **form}
    )


def test_upload_list_get(api: TestClient) -> None:
    response = upload(api, classification_npz())
    assert response.status_code == 201, response.text
    ds = response.json()
    assert (ds["kind"], ds["n_sequences"], ds["max_length"], ds["n_features"], ds["n_classes"]) == (
        "classification", 60, 12, 2, 3,
    )  # fmt: skip
    assert len(ds["sha256"]) == 64
    assert [d["id"] for d in api.get(f"{V1}/datasets").json()] == [ds["id"]]
    assert api.get(f"{V1}/datasets/{ds['id']}").json()["name"] == "toy"


@pytest.mark.parametrize(
    ("content", "filename", "text"),
    [
        (b"\x00garbage", "toy.npz", "npz"),
        (npz(x=np.full((4, 5, 1), np.nan, dtype=np.float32)), "toy.npz", "nan"),
        (npz(x=np.zeros((4, 5, 1)), lengths=np.array([5, 5, 9, 5])), "toy.npz", "length"),
        (npz(x=np.zeros((0, 5, 1))), "toy.npz", "empty"),
        (b"a,b\n1,2\n", "toy.csv", "sequence_id"),
        (b"whatever", "toy.txt", ".npz or .csv"),
    ],
)
def test_invalid_upload_is_422_naming_the_problem_and_stores_nothing(
    api: TestClient, content: bytes, filename: str, text: str
) -> None:
    response = upload(api, content, filename=filename)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]  # an array, like every 422
    assert error["loc"] == ["body", "file"] and text in error["msg"].lower()
    assert api.get(f"{V1}/datasets").json() == []


def test_labels_out_of_range_are_422(api: TestClient) -> None:
    content = npz(x=np.zeros((4, 5, 1)), y=np.array([0, 1, -1, 0]))
    response = upload(api, content, kind="classification")
    assert response.status_code == 422
    assert "label" in response.json()["detail"][0]["msg"].lower()
    assert api.get(f"{V1}/datasets").json() == []


def test_oversized_upload_is_413(api: TestClient, migrated: Settings) -> None:
    from cellsearch.service.settings import get_settings

    api.app.dependency_overrides[get_settings] = lambda: migrated.model_copy(  # type: ignore[attr-defined]
        update={"max_upload_bytes": 100}
    )
    response = upload(api, classification_npz())
    assert response.status_code == 413
    assert "limit of 100 bytes" in response.json()["detail"]


def test_duplicate_name_is_409_and_unknown_is_404(api: TestClient) -> None:
    assert upload(api, classification_npz()).status_code == 201
    assert upload(api, classification_npz(seed=1)).status_code == 409
    assert api.get(f"{V1}/datasets/nope").status_code == 404
    assert api.delete(f"{V1}/datasets/nope").status_code == 404


def dataset_study(dataset_id: str) -> dict[str, Any]:
    return {
        "name": "on-upload",
        "task": {"kind": "dataset", "dataset_id": dataset_id},
        "space": {"cell_type": ["gru", "lstm"], "hidden_size": 8},
        "budget": {"n_trials": 2, "max_epochs": 2},
        "pruner": "none",
    }


def test_study_on_unknown_dataset_is_422(api: TestClient) -> None:
    response = api.post(f"{V1}/studies", json=dataset_study("missing"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "task", "dataset_id"] and "upload it first" in error["msg"]


def test_study_runs_on_an_upload_and_protects_it(api: TestClient, migrated: Settings) -> None:
    ds = upload(api, classification_npz()).json()
    assert api.post(f"{V1}/studies", json=dataset_study(ds["id"])).status_code == 201
    backend = sql_backend(engine_for(migrated), grace_period=migrated.grace_period)
    worker = Worker(optuna_storage(migrated), backend, device=torch.device("cpu"))
    assert worker.step() is not None and worker.step() is not None
    trials = api.get(f"{V1}/studies/on-upload/trials").json()["items"]
    assert [t["state"] for t in trials] == ["complete", "complete"]
    assert {t["test_metric_name"] for t in trials} == {"accuracy"}

    refused = api.delete(f"{V1}/datasets/{ds['id']}")
    assert refused.status_code == 409 and "on-upload" in refused.json()["detail"]
    assert api.delete(f"{V1}/studies/on-upload").status_code == 204
    assert api.delete(f"{V1}/datasets/{ds['id']}").status_code == 204
    assert api.get(f"{V1}/datasets").json() == []


def test_a_delete_between_a_submits_checks_and_its_write_leaves_no_study(
    api: TestClient, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Submit checks the data set, a delete removes it, then submit writes: the submit is a
    422 naming task.dataset_id and stores nothing (once a 201 with a dangling data set)."""
    ds = upload(api, classification_npz()).json()
    real_label = studies_ops.label_study

    def delete_first(study: Any, spec: Any, **kwargs: Any) -> None:  # after the checks
        assert api.delete(f"{V1}/datasets/{ds['id']}").status_code == 204
        real_label(study, spec, **kwargs)

    monkeypatch.setattr(studies_ops, "label_study", delete_first)
    response = api.post(f"{V1}/studies", json=dataset_study(ds["id"]))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "task", "dataset_id"] and "deleted" in error["msg"]
    assert api.get(f"{V1}/studies/on-upload").status_code == 404
    assert api.get(f"{V1}/studies").json()["total"] == 0
    storage = optuna_storage(migrated)
    assert optuna.get_all_study_names(storage) == []  # its Optuna study went too


def test_a_delete_while_a_submit_writes_is_refused(
    api: TestClient, migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete that starts while the submit's transaction holds its study row waits for it
    (SQLite: one writer at a time; PostgreSQL: the foreign key's lock) and is then a 409
    naming the study, whichever of the two threads gets the database first."""
    ds = upload(api, classification_npz()).json()
    real_confirm = studies_ops.confirm_dataset
    answers: list[int] = []

    def delete_meanwhile(session: Any, record: Any) -> None:
        real_confirm(session, record)
        engine = engine_for(migrated)

        def delete() -> None:
            try:
                datasets_ops.delete_dataset(engine=engine, dataset_id=ds["id"])
                answers.append(204)
            except Conflict:
                answers.append(409)

        deleting = threading.Thread(target=delete)
        deleting.start()
        deleting.join(timeout=0.5)  # blocked on the submit's transaction (or not yet begun)
        threads.append(deleting)

    threads: list[threading.Thread] = []
    monkeypatch.setattr(studies_ops, "confirm_dataset", delete_meanwhile)
    assert api.post(f"{V1}/studies", json=dataset_study(ds["id"])).status_code == 201
    threads[0].join(timeout=30)
    assert answers == [409]
    assert api.get(f"{V1}/datasets/{ds['id']}").status_code == 200
    assert api.get(f"{V1}/studies/on-upload").status_code == 200


def test_a_suite_on_a_deleted_upload_is_refused_whole(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = upload(api, classification_npz()).json()
    suite = {
        "name": "uploads",
        "tasks": [{"kind": "dataset", "dataset_id": ds["id"]}, {"kind": "adding", "seq_len": 20}],
        "study": {
            "space": {"cell_type": ["gru"], "hidden_size": 8},
            "budget": {"n_trials": 2, "max_epochs": 1},
            "pruner": "none",
        },
    }
    real_write = suites_ops._write_records

    def delete_first(*args: Any) -> Any:  # after the checks and the Optuna studies
        assert api.delete(f"{V1}/datasets/{ds['id']}").status_code == 204
        return real_write(*args)

    monkeypatch.setattr(suites_ops, "_write_records", delete_first)
    response = api.post(f"{V1}/suites", json=suite)
    assert response.status_code == 422, response.text
    assert "deleted" in response.json()["detail"][0]["msg"]
    assert api.get(f"{V1}/suites").json()["total"] == 0
    assert api.get(f"{V1}/studies").json()["total"] == 0


def test_the_reference_is_made_for_studies_stored_before_it(migrated: Settings) -> None:
    """The migration links the studies of earlier releases to their data sets."""
    from alembic import command

    from cellsearch.service.store.migrate import alembic_config

    engine = engine_for(migrated)
    config = alembic_config(migrated.database_url)
    command.downgrade(config, "0008")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO cellsearch_datasets (id, name, format, kind, sha256, size_bytes, "
                "n_sequences, max_length, n_features, content, created_at) VALUES ('d1', 'toy', "
                "'npz', 'classification', 'x', 1, 1, 1, 1, :c, CURRENT_TIMESTAMP)"
            ),
            {"c": b"x"},
        )
        for name, task in [("old-upload", {"kind": "dataset", "dataset_id": "d1"}),
                           ("old-adding", {"kind": "adding"}),
                           ("old-gone", {"kind": "dataset", "dataset_id": "gone"})]:  # fmt: skip
            conn.execute(
                sa.text(
                    "INSERT INTO cellsearch_studies (name, spec, status, n_trials, claimed, "
                    "created_at, updated_at) VALUES (:n, :s, 'running', 2, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"n": name, "s": json.dumps({"task": task})},
            )
    command.upgrade(config, "head")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT name, dataset_id FROM cellsearch_studies"))
        linked: dict[str, str | None] = {name: dataset for name, dataset in rows}
    assert linked == {"old-upload": "d1", "old-adding": None, "old-gone": None}
    with pytest.raises(Conflict, match="old-upload"):
        datasets_ops.delete_dataset(engine=engine, dataset_id="d1")
