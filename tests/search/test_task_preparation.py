"""Preparing tasks with many processes at once: nothing shared is read half-written.

Workers started together (``serve`` starts one per CPU) prepare the same task at the same
moment. The chorales once failed so: music21 read a pickle of a score that another process
was still writing into its shared scratch folder.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cellsearch.search.tasks import ChoralesTask, DatasetTask, build_task
from cellsearch.search.tasks import package_files as files

needs_music21 = pytest.mark.skipif(
    files.importlib.util.find_spec("music21") is None, reason="needs the datasets extra"
)
PIECES = 6


def _upload() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x=rng.normal(size=(40, 12, 2)), y=rng.integers(0, 2, size=40))
    return buffer.getvalue()


def _prepare(cache: str) -> tuple[bytes, bytes]:
    """One worker's preparation of both tasks: fingerprints of their arrays."""
    os.environ["CELLSEARCH_CACHE_DIR"] = cache
    chorales = build_task(ChoralesTask(kind="chorales", max_pieces=PIECES), seed=0)
    content = _upload()
    upload = build_task(
        DatasetTask(kind="dataset", dataset_id="d1", task="classification"),
        seed=0,
        resolve_dataset=lambda _id: (content, "npz"),
    )
    return chorales.train.x.numpy().tobytes(), upload.train.x.numpy().tobytes()


@needs_music21
def test_four_processes_prepare_the_same_tasks_at_once_repeatedly(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    results: list[tuple[bytes, bytes]] = []
    with context.Pool(4) as pool:
        for round_ in range(3):  # a fresh cache each round: all four race to build it
            cache = tmp_path / f"round-{round_}"
            results += pool.map(_prepare, [str(cache)] * 4)
            built = list((cache / "chorales").iterdir())
            assert [p.suffix for p in built if p.suffix != ".lock"] == [".npz"]  # no leftovers
    assert len(set(results)) == 1  # every process read the same arrays


@needs_music21
def test_scores_are_parsed_without_music21s_shared_pickles(tmp_path: Path) -> None:
    # music21 keeps its pickles in a scratch folder under the temporary directory
    script = (
        "from cellsearch.search.tasks import package_files as f\n"
        f"for path in f.chorale_paths({PIECES}):\n"
        "    f.piano_roll(path)\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".p", ".pgz", ".gz")]


@needs_music21
def test_an_unreadable_cache_file_is_parsed_again_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CELLSEARCH_CACHE_DIR", str(tmp_path))
    first = files.chorale_rolls(PIECES)
    (target,) = (tmp_path / "chorales").glob("*.npz")
    target.write_bytes(target.read_bytes()[:100])  # truncated, as by a full disk
    again = files.chorale_rolls(PIECES)
    assert "unreadable chorale cache" in caplog.text
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert files._read_rolls(target) is not None  # replaced by a whole file


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*_args: Any, **_kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.np, "savez_compressed", full_disk)
    target = tmp_path / "rolls.npz"
    with pytest.raises(OSError, match="No space left"):
        files._write_rolls(target, [np.zeros((2, 88), dtype=np.uint8)])
    assert list(tmp_path.iterdir()) == []
