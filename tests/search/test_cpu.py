"""Sharing a machine's CPUs between workers: quotas, affinity, the per-worker share."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellsearch.search.worker import cpu


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert cpu.cgroup_cpu_quota(tmp_path) == 2.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu.cgroup_cpu_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu.cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpu.cgroup_cpu_quota(tmp_path) is None


def test_no_cgroup_files_means_no_quota(tmp_path: Path) -> None:
    assert cpu.cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("garbage")
    assert cpu.cgroup_cpu_quota(tmp_path) is None


def test_usable_cpus_is_capped_by_the_quota_rounded_up() -> None:
    unlimited = cpu.usable_cpus(None)
    assert unlimited >= 1
    assert cpu.usable_cpus(0.5) == 1
    assert cpu.usable_cpus(1000.0) == unlimited  # the affinity mask is the other bound


@pytest.mark.parametrize(
    ("cpus", "workers", "share"), [(16, 4, 4), (16, 5, 3), (2, 3, 1), (8, 0, 8)]
)
def test_threads_per_worker(cpus: int, workers: int, share: int) -> None:
    assert cpu.threads_per_worker(cpus, workers) == share


def test_omp_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu.omp_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu.omp_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "zero")
    assert cpu.omp_threads() is None


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 2), (8, 8), (64, 8)])
def test_default_local_workers_is_one_per_cpu_capped(cpus: int, workers: int) -> None:
    assert cpu.default_local_workers(cpus) == workers


def test_torch_threads_default_to_one_unless_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu.fixed_threads(None) == cpu.DEFAULT_TORCH_THREADS == 1
    assert cpu.fixed_threads(3) == 3
    assert cpu.fixed_threads("auto") is None  # share the machine's CPUs
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert cpu.fixed_threads(None) == 4  # a scheduler's fix is kept
    assert cpu.fixed_threads(2) == 2  # the service's own setting wins
    assert cpu.fixed_threads("auto") is None


def test_machine_id_is_stable_and_bounded() -> None:
    first = cpu.machine_id()
    assert first and first == cpu.machine_id() and len(first) <= 64
