"""Data sets uploaded from arrays, a DataFrame or a file; suites through ``client.suites``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cellsearch.client import Client, Conflict, InvalidRequest, LocalFileError, NotFound
from cellsearch.client.records import SuiteDetail
from tests.service.test_suite_spec import suite_data


def test_arrays_a_frame_and_a_file_upload(client: Client, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5, 2)).astype(np.float32)
    made = client.datasets.upload(name="from-arrays", x=x, y=np.arange(30) % 3)
    assert (made.format, made.kind, made.n_sequences, made.n_classes) == ("npz",
            "classification", 30, 3)  # fmt: skip
    long = pd.DataFrame(
        [{"sequence_id": f"s{i}", "step": t, "f1": float(i + t), "label": i % 2}
         for i in range(12) for t in range(3)]
    )  # fmt: skip
    framed = client.datasets.upload(long, name="from-a-frame")
    assert (framed.format, framed.n_sequences, framed.max_length) == ("csv", 12, 3)
    path = tmp_path / "d.npz"
    buffer = io.BytesIO()
    np.savez(buffer, x=x)
    path.write_bytes(buffer.getvalue())
    assert client.datasets.upload(path, name="from-a-file", kind="forecasting").kind == (
        "forecasting"
    )
    assert [d.name for d in client.datasets.list()] == ["from-a-file", "from-a-frame",
                                                       "from-arrays"]  # fmt: skip
    assert client.datasets.find(made.id).name == "from-arrays"
    assert client.datasets.get(made.id) == client.datasets.find("from-arrays")
    assert client.datasets.delete("from-arrays").id == made.id
    with pytest.raises(NotFound, match="no data set has the id or name 'from-arrays'"):
        client.datasets.delete("from-arrays")


def test_upload_errors_are_typed(client: Client, tmp_path: Path) -> None:
    x = np.zeros((10, 3), np.float32)
    with pytest.raises(InvalidRequest) as info:
        client.datasets.upload(name="bad name!", x=x)
    assert info.value.field == "name" and str(info.value).startswith("HTTP 422: invalid upload")
    client.datasets.upload(name="taken", x=x)
    with pytest.raises(Conflict):
        client.datasets.upload(name="taken", x=x)
    with pytest.raises(LocalFileError, match="cannot read"):
        client.datasets.upload(tmp_path / "missing.npz", name="m")
    with pytest.raises(TypeError):
        client.datasets.upload(tmp_path / "missing.npz", name="m", x=x)


def test_suites_submit_get_list_lifecycle_report(client: Client) -> None:
    name = suite_data()["name"]
    made = client.suites.submit(suite_data())
    assert isinstance(made, SuiteDetail) and made.n_tasks == len(made.studies) == 2
    assert [s.name for s in client.suites.list()] == [name]
    assert client.suites.pause(name).status == "paused"
    assert client.suites.cancel(name).ended
    assert client.suites.wait(name, progress=False).status == "cancelled"
    report = client.suites.report(name)
    assert report.verdict and report.suite.name == name
    assert report.to_frame().empty  # no study finished: no score
    client.suites.delete(name)
    with pytest.raises(NotFound):
        client.suites.get(name)
