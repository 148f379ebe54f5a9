"""The CLI's text pieces: the progress line, the ETA, tables that fit 80 columns."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import typer

from cellsearch.client import Client, StudyDetail, Trial
from cellsearch.service.cli import progress
from cellsearch.service.cli.progress import Eta, clock, epochs_done, progress_line
from cellsearch.service.cli.text import table

COUNTS = {"waiting": 0, "failed": 0, "pruned": 0, "requeued": 0, "by_cell": {}}


def study(
    finished: int = 3, running: int = 2, best: float | None = 0.000271, **extra: Any
) -> StudyDetail:
    counts = {**COUNTS, "finished": finished, "running": running, "complete": finished}
    best_trial = {"number": 1, "state": "complete", "value": best, "cell_type": "gru",
                  "params": {}}  # fmt: skip
    return StudyDetail.parse({
        "name": "quickstart-adding",
        "status": "running",
        "task": "adding",
        "cell_types": ["gru"],
        "n_trials": 30,
        "objective": "validation MSE",
        "created_at": "2026-12-07T00:00:00Z",
        "updated_at": "2026-12-07T00:00:00Z",
        "spec": {"budget": {"max_epochs": 10}},
        "best_trial": best_trial if best is not None else None,
        **extra,
        "counts": {**counts, **extra.get("counts", {})},
    })  # fmt: skip


def running(*epochs: int) -> list[Trial]:
    return [
        Trial.parse({"number": i, "state": "running", "value": None, "cell_type": "gru",
                     "params": {}, "learning_curve": {str(e): 0.1 for e in range(n)}})
        for i, n in enumerate(epochs)
    ]  # fmt: skip


def test_progress_line_shows_running_epochs_metric_and_eta() -> None:
    wide = progress_line(study(), running(2, 6), elapsed=42, eta=65, columns=200)
    assert wide == (
        "3/30 done | 2 running (epoch 3/10, 7/10) | best validation MSE 0.000271 (gru) | "
        "0:42, ETA 1:05"
    )
    line = progress_line(study(), running(2, 6), elapsed=42, eta=65, columns=79)
    assert line == "3/30 | 2 running (epoch 3-7/10) | best validation MSE 0.000271 | 0:42, ETA 1:05"


def test_the_first_minute_shows_the_epoch_under_way() -> None:
    line = progress_line(study(finished=0, running=1, best=None), running(0), elapsed=5, eta=None)
    assert line == "0/30 | 1 running (epoch 1/10) | best validation MSE (none yet) | 0:05, ETA --"


@pytest.mark.parametrize("n_running", [0, 1, 3, 8, 40])
@pytest.mark.parametrize("columns", [80, 60])
def test_progress_line_always_fits(n_running: int, columns: int) -> None:
    long = study(best=-1.234567e-12, objective="validation Bernoulli NLL per step",
                 status="paused", counts={"finished": 12345, "running": n_running, "failed": 999,
                                          "complete": 11346, "pruned": 0},
                 n_trials=99999)  # fmt: skip
    line = progress_line(long, running(*range(n_running)), elapsed=99999, eta=123456,
                         columns=columns)  # fmt: skip
    assert len(line) <= columns


def test_eta_from_epochs_done_since_the_watch_began() -> None:
    eta = Eta()
    assert eta.update(0.0, 20.0, 300.0) is None  # the first look: nothing measured yet
    assert eta.update(10.0, 20.0, 300.0) is None  # no progress yet
    # 10 epochs in 20 s: 0.5 epochs a second, 270 left -> 540 s
    assert eta.update(20.0, 30.0, 300.0) == pytest.approx(540.0)
    # later the rate is that of the last minute: 60 epochs in the 60 s before t=200
    for t, done in ((80.0, 40.0), (140.0, 100.0), (200.0, 160.0)):
        left = eta.update(t, done, 300.0)
    assert left == pytest.approx(140.0)  # 140 epochs left at 1 epoch/s
    # a minute without an epoch done: back to the rate of the whole watch
    assert eta.update(270.0, 160.0, 300.0) == pytest.approx(140 * 270 / (160 - 20))
    s = study(finished=2, running=2)
    assert epochs_done(s, running(3, 5)) == (2 * 10 + 3 + 5, 300)


def test_clock() -> None:
    assert [clock(5), clock(65), clock(3725)] == ["0:05", "1:05", "1:02:05"]


def test_table_wraps_one_column_and_falls_back_to_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the width stays 80 however wide the terminal
    rows = [["lstm", "x" * 30 + " " + "y" * 30 + " " + "z" * 30, "17152"]]
    lines = table(["name", "description", "params"], rows, wrap_column=1)
    assert max(len(line) for line in lines) <= 80 and len(lines) > 3
    assert "".join(lines).count("x" * 30) == 1  # nothing cut
    wide = table(["a" * 30, "b" * 30, "c" * 30], [["1" * 30, "2" * 30, "3" * 30]])
    assert wide[0] == f"{'a' * 30}: {'1' * 30}" and max(len(line) for line in wide) <= 80


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_follow_gives_up_after_the_outage_limit_and_says_how_to_reattach(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ticks = iter(range(0, 10_000, 100))
    down = Client("http://x", http=httpx.Client(transport=httpx.MockTransport(refused)))
    with pytest.raises(typer.Exit) as info:
        progress.follow(
            down,
            "s",
            max_outage=250,
            now=lambda: float(next(ticks)),
            sleep=lambda _s: None,
        )
    assert info.value.exit_code == 1
    err = " ".join(capsys.readouterr().err.split())  # wrapped at 80 columns
    assert "Retrying every 2 s for up to 4:10" in err
    assert "re-attach with `cellsearch watch s`" in err


def test_progress_counts_the_seed_reevaluation_once_it_is_planned() -> None:
    counts = {"finished": 30, "running": 1, "failed": 0, "complete": 30, "pruned": 0,
              "reevaluated": 4}  # fmt: skip
    s = study(counts=counts, n_reevaluations=9)
    line = progress_line(s, running(2), elapsed=60, eta=30, columns=200)
    assert line.startswith("30/30 +4/9 re-eval done | 1 running (epoch 3/10)")
    assert epochs_done(s, running(2)) == (342.0, 390.0)  # (30 + 4) x 10 + 2 of (30 + 9) x 10
