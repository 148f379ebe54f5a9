"""Fixtures shared by the service's tests of real worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A :class:`Cluster` whose processes are killed when the test ends, however it ends."""
    workers = Cluster(tmp_path)
    try:
        yield workers
    finally:
        workers.close()
        print(workers.output())  # shown by pytest only when the test failed
