"""Waiting for a study (the CLI's status line, a timeout), and pandas as an optional extra."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from cellsearch.client import Client, TrialList, WaitTimeout
from cellsearch.client.displays import NullDisplay, TextDisplay, display_for
from tests.client.conftest import add_trials
from tests.search.test_spec import spec_data


def _complete(settings: Any) -> None:
    from sqlalchemy import update

    from cellsearch.service.store.db import engine_for
    from cellsearch.service.store.tables import StudyRecord

    add_trials(settings.database_url, "adding-t20", [("lstm", "COMPLETE", 0.1)] * 4)
    with engine_for(settings).begin() as conn:
        conn.execute(update(StudyRecord).values(status="completed", claimed=4))


def test_wait_returns_the_final_state_and_shows_the_clis_line(
    client: Client, served: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    client.submit(spec_data())
    _complete(served)
    done = client.wait("adding-t20")  # stdout is no terminal here: one line, printed
    assert done.status == "completed" and done.counts.complete == 4
    assert capsys.readouterr().out.startswith("4/4 done, completed | 0 running | best ")


def test_submit_with_wait_and_a_timeout(client: Client) -> None:
    with pytest.raises(WaitTimeout, match=r"client\.wait\('adding-t20'\)"):
        client.submit(spec_data(), wait=True, progress=False, timeout=0)
    assert client.get("adding-t20").status in ("running", "queued")  # it goes on


def test_where_the_progress_goes() -> None:
    assert isinstance(display_for(False), NullDisplay)
    assert isinstance(display_for(True), TextDisplay)  # no Jupyter kernel in a test


def test_frames_name_the_extra_when_pandas_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match=r"pip install 'cellsearch\[pandas\]'"):
        TrialList().to_frame()
