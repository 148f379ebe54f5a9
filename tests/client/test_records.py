"""The client's records state the server's shapes field for field: each record written
back as JSON is what the server sent (a field the server adds fails here first, so that
the client learns it in the same change)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from cellsearch.client import Client, Dataset, Study, StudyDetail, SuiteDetail, Trial, Validation
from cellsearch.client.records import Cell, Record, Suite, Task, WhoAmI
from tests.client.conftest import add_trials
from tests.search.test_spec import spec_data
from tests.service.test_suite_spec import suite_data


def as_sent(written: Any, sent: Any) -> Any:
    """``written`` with only the keys ``sent`` has, at every depth of the records."""
    if isinstance(written, dict) and isinstance(sent, dict):
        return {k: as_sent(written[k], sent[k]) if k in written else None for k in sent}
    if isinstance(written, list) and isinstance(sent, list):
        return [as_sent(w, s) for w, s in zip(written, sent, strict=True)]
    return written


def same(kind: type[Record], data: dict[str, Any]) -> None:
    """``kind`` names every field of ``data`` in the server's order, and writes each back as
    it came (fields the client knows and this server does not send have defaults)."""
    assert list(data) == [k for k in kind.model_fields if k in data], kind.__name__
    dumped = kind.parse(data).model_dump(mode="json")
    assert as_sent(dumped, data) == data, kind.__name__


def test_every_record_round_trips_the_servers_json(client: Client, served: Any) -> None:
    request = client.request
    request("POST", "/studies", json=spec_data(space={"cell_type": ["lstm", "gru"]}))
    add_trials(
        served.database_url, "adding-t20", [("lstm", "COMPLETE", 0.1), ("gru", "FAIL", None)]
    )
    same(StudyDetail, request("GET", "/studies/adding-t20"))
    same(Study, request("GET", "/studies")["items"][0])
    for trial in request("GET", "/studies/adding-t20/trials")["items"]:
        same(Trial, trial)
    same(Validation, request("POST", "/studies/validate", json=spec_data(name="other")))
    same(Cell, request("GET", "/cells")[0])
    same(Task, request("GET", "/tasks")[0])
    same(WhoAmI, request("GET", "/whoami"))
    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((20, 4, 1), np.float32), y=np.arange(20) % 2)
    files = {"file": ("d.npz", buffer.getvalue())}
    same(Dataset, request("POST", "/datasets", files=files, data={"name": "d"}))
    request("POST", "/suites", json=suite_data())
    same(SuiteDetail, request("GET", f"/suites/{suite_data()['name']}"))
    same(Suite, request("GET", "/suites")["items"][0])
