"""Uploaded data sets through the API: validation, storage, use by a study, deletion."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from cellsearch.search.worker.loop import Worker
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
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
