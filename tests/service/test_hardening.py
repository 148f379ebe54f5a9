"""Inputs that used to hurt the service (issue 14's table), one test per row and more.

Each gets a 4xx that names the problem and stores nothing; the concurrency rows end in
one coherent answer per request, never a 5xx.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import optuna
import pytest
from fastapi.testclient import TestClient

from cellsearch.search.errors import DatasetError
from cellsearch.search.tasks.file_formats import parse_upload
from cellsearch.search.tasks.upload_limits import UploadLimits
from tests.search.test_spec import spec_data
from tests.service.test_datasets import upload

V1 = "/api/v1"


def post_raw(api: TestClient, body: str) -> Any:
    """POST /studies with a body as written (JSON with NaN, a lone surrogate...)."""
    return api.post(
        f"{V1}/studies", content=body.encode(), headers={"Content-Type": "application/json"}
    )


def assert_refused(api: TestClient, response: Any, status: int, where: list[Any]) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]  # a valid JSON body, whatever was sent
    assert any(e["loc"][: len(where)] == where for e in detail), detail
    assert api.get(f"{V1}/studies").json()["total"] == 0  # nothing stored


@pytest.mark.parametrize(
    ("space", "where"),
    [('{"learning_rate": {"low": NaN, "high": 0.1}}', ["body", "space", "learning_rate"]),
     ('{"learning_rate": {"low": 0.001, "high": Infinity}}', ["body", "space", "learning_rate"]),
     ('{"learning_rate": NaN}', ["body", "space", "learning_rate"]),
     ('{"dropout": -Infinity}', ["body", "space", "dropout"]),
     ('{"cell_type": ["lstm"], "lstm.forget_bias": {"low": 0, "high": NaN}}',
      ["body", "space", "cell_options"])],
)  # fmt: skip
def test_non_finite_numbers_are_422(api: TestClient, space: str, where: list[str]) -> None:
    body = json.dumps(spec_data()).removesuffix("}") + f', "space": {space}}}'
    assert_refused(api, post_raw(api, body), 422, where)


@pytest.mark.parametrize(
    ("budget_or_field", "where"),
    [('"budget": {"n_trials": 1, "max_trial_seconds": NaN}', ["body", "budget"]),
     ('"budget": {"n_trials": 1}, "space": {"dropout": NaN}', ["body", "space", "dropout"]),
     ('"budget": {"n_trials": 1}, "description": "\\ud800"', ["body", "description"]),
     ('"budget": {"n_trials": 1}, "description": "a\\u0000b"', ["body", "description"])],
)  # fmt: skip
def test_422s_that_echoed_unserialisable_input_are_json(
    api: TestClient, budget_or_field: str, where: list[str]
) -> None:
    body = '{"name": "x", "task": {"kind": "adding"}, ' + budget_or_field + "}"
    assert_refused(api, post_raw(api, body), 422, where)


@pytest.mark.parametrize(
    "options",
    [{"lstm": None}, {"lstm": 5}, {"lstm": [1, 2]}, [{"lstm": {}}], "lstm", None],
)
def test_malformed_cell_options_are_422(api: TestClient, options: Any) -> None:
    space = {"cell_type": ["lstm"], "cell_options": options}
    response = api.post(f"{V1}/studies", json=spec_data(space=space))
    assert_refused(api, response, 422, ["body", "space", "cell_options"])


def test_raw_inputs_never_reach_the_database(api: TestClient) -> None:
    offset = api.get(f"{V1}/studies", params={"offset": 2**63})
    assert_refused(api, offset, 422, ["query", "offset"])
    for path in ("/studies/a%00b", "/studies/a%00b/trials", "/datasets/a%00b"):
        response = api.get(f"{V1}{path}")
        assert response.status_code == 422, path
        assert response.json()["detail"][0]["loc"][0] == "path"
    huge = api.post(f"{V1}/studies", json=spec_data(space={"hidden_size": 10**400}))
    assert_refused(api, huge, 422, ["body", "space", "hidden_size"])
    assert "401 digits" in huge.json()["detail"][0]["msg"]


def _npz_declaring(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    """An NPZ whose x.npy header claims ``shape`` and holds no data at all."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy, header)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("x.npy", npy.getvalue())
    return archive.getvalue()


def test_an_npz_header_claiming_ten_billion_values_is_422(api: TestClient) -> None:
    response = upload(api, _npz_declaring((10**10,)))
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "file"] and "declare 80000000000 bytes" in error["msg"]
    assert api.get(f"{V1}/datasets").json() == []


def _zeros_npz(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=np.zeros(shape, dtype=np.int8))
    return buffer.getvalue()


def test_shapes_over_the_limits_are_refused_from_the_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 92 KB file of int8 zeros shaped (1000, 95000): refused before numpy reads it."""
    content = _zeros_npz((1000, 95000))
    assert len(content) < 200_000

    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("the arrays were read")

    monkeypatch.setattr(np, "load", never)
    with pytest.raises(DatasetError, match=r"95000 steps per sequence.*max_seq_len=5000"):
        parse_upload(content, "npz", limits=UploadLimits())
    with pytest.raises(DatasetError, match=r"2000 features per step.*max_features=1024"):
        parse_upload(_zeros_npz((2, 3, 2000)), "npz", limits=UploadLimits())
    with pytest.raises(DatasetError, match="holds 30000000 values"):
        parse_upload(_zeros_npz((3000, 5000, 2)), "npz", limits=UploadLimits(max_bytes=10**8))


def test_uploads_over_the_shape_limits_are_422(api: TestClient) -> None:
    steps = upload(api, _zeros_npz((1000, 95000)))
    assert steps.status_code == 422 and "max_seq_len=5000" in steps.json()["detail"][0]["msg"]
    columns = ",".join(f"f{i}" for i in range(1_000_000))
    wide = upload(api, f"sequence_id,step,{columns}\n".encode(), filename="wide.csv")
    assert wide.status_code == 422
    assert "1000000 feature columns" in wide.json()["detail"][0]["msg"]
    long_rows = "".join(f"a,{t},1\n" for t in range(5001))
    long = upload(api, f"sequence_id,step,v\n{long_rows}".encode(), filename="long.csv")
    assert "more than 5000 steps" in long.json()["detail"][0]["msg"]
    assert api.get(f"{V1}/datasets").json() == []


def test_csv_memory_stays_within_a_few_times_the_file() -> None:
    import tracemalloc

    rows = "".join(f"s{i // 50},{i % 50},{i * 0.5},{i * 0.25}\n" for i in range(200_000))
    content = f"sequence_id,step,a,b\n{rows}".encode()  # 6 MB, 4000 sequences of 50 steps
    tracemalloc.start()
    try:
        dataset = parse_upload(content, "csv", limits=UploadLimits())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert dataset.x.shape == (4000, 50, 2)
    assert peak < 5 * len(content), peak / len(content)  # 21.6x with rows as Python lists


@pytest.mark.parametrize(
    ("field", "value"),
    [("description", "x" * 2_000_000), ("space", {"batch_size": [32] * 400_000})],
)
def test_bodies_over_the_size_limit_are_413_and_not_echoed(
    api: TestClient, field: str, value: Any
) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(**{field: value}))
    assert response.status_code == 413
    assert "limit of 1000000 bytes" in response.json()["detail"]
    assert len(response.content) < 200
    assert api.get(f"{V1}/studies").json()["total"] == 0


def test_a_body_without_length_is_counted_as_it_arrives(api: TestClient) -> None:
    body = json.dumps(spec_data(description="x" * 1_500_000)).encode()

    def chunks() -> Any:
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    response = api.post(
        f"{V1}/studies", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


def test_choice_lists_are_limited_and_the_schema_says_so(api: TestClient) -> None:
    response = api.post(f"{V1}/studies", json=spec_data(space={"batch_size": [32] * 101}))
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "space", "batch_size"] and "max_choices=100" in error["msg"]
    schema = api.get(f"{V1}/spec-schema").json()
    batch = schema["$defs"]["SearchSpace"]["properties"]["batch_size"]["anyOf"]
    assert batch[0]["maximum"] == 4096 and batch[1]["maxItems"] == 100
    assert schema["$defs"]["AddingTask"]["properties"]["seq_len"]["maximum"] == 5000
    assert schema["$defs"]["CopyTask"]["properties"]["seq_len"]["maximum"] == 4980


def test_timestamps_carry_their_offset(api: TestClient, migrated: Any) -> None:
    api.post(f"{V1}/studies", json=spec_data())
    dataset = upload(api, _ok_npz()).json()
    study = optuna.load_study(study_name="adding-t20", storage=migrated.database_url)
    study.tell(study.ask(), 0.5)
    stamps = [
        api.get(f"{V1}/studies").json()["items"][0]["created_at"],
        api.get(f"{V1}/studies/adding-t20").json()["updated_at"],
        dataset["created_at"],
        api.get(f"{V1}/studies/adding-t20/trials").json()["items"][0]["started_at"],
    ]
    for stamp in stamps:
        assert stamp.endswith(("Z", "+00:00")), stamp


def _ok_npz() -> bytes:
    from tests.service.test_datasets import classification_npz

    return classification_npz()


def test_a_method_the_path_lacks_is_405_listing_every_method(api: TestClient) -> None:
    response = api.request("PATCH", f"{V1}/studies")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    response = api.request("PUT", f"{V1}/studies/some-name")
    assert response.headers["allow"] == "DELETE, GET"
    # a fixed path is not an instance of the template it also matches
    response = api.request("OPTIONS", f"{V1}/studies/validate")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/studies", "/studies/validate"])
def test_a_study_may_not_take_the_name_of_an_api_path(api: TestClient, path: str) -> None:
    response = api.post(f"{V1}{path}", json=spec_data(name="validate"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"][-1] == "name" and error["type"] == "reserved_name"
    assert "reserved" in error["msg"]
    assert api.get(f"{V1}/studies").json()["total"] == 0  # nothing stored


def test_a_body_that_is_not_text_is_422(api: TestClient) -> None:
    response = api.post(
        f"{V1}/studies", content=b"\xff\xfe\x00", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body"]


def test_a_compressed_upload_is_read_back_by_a_worker() -> None:
    """A worker re-reads the stored file without the upload limit: a compressed NPZ
    unpacks to more than its stored size (it was refused as 'decompressed' before)."""
    from cellsearch.search.tasks import DatasetTask, prepare_task

    buffer = io.BytesIO()
    x = np.repeat(np.arange(40, dtype=np.float32)[:, None, None], 30, axis=1)  # (40, 30, 1)
    np.savez_compressed(buffer, x=x, y=np.arange(40) % 2)
    content = buffer.getvalue()
    assert len(content) < x.nbytes  # it compresses
    task = DatasetTask(kind="dataset", dataset_id="d1")
    data = prepare_task(task, 0, resolve_dataset=lambda _id: (content, "npz"))
    assert (data.meta.input_size, data.meta.output_size) == (1, 2)


def test_an_unreachable_database_is_503_and_the_document_is_still_served(
    tmp_path: Any,
) -> None:
    from cellsearch.service.api.app import create_app
    from cellsearch.service.settings import Settings, get_settings

    app = create_app()
    down = Settings(database_url=f"sqlite:///{tmp_path}/no-such-folder/x.db")
    app.dependency_overrides[get_settings] = lambda: down
    with TestClient(app) as client:
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert {} not in document.json()["paths"][f"{V1}/studies"]["post"]["security"]
        assert client.get(f"{V1}/studies").status_code == 503
        response = upload(client, _ok_npz())
        assert response.status_code == 503 and "database unavailable" in response.json()["detail"]
