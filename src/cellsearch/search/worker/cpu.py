"""How many CPU threads a worker's training may use without oversubscribing its machine.

Several workers on one machine (``docker compose up --scale worker=N``, a loop of
``cellsearch worker`` over SSH, ``--gpus 0,1 --per-gpu 2``) would each start torch with
one thread per core and fight over the cores. Unless the count is fixed
(``CELLSEARCH_TORCH_THREADS``, or ``OMP_NUM_THREADS`` as Kubernetes manifests set it), a
worker divides the CPUs it may use (its affinity mask, capped by a cgroup CPU quota) by
the number of live workers on the same machine, which it learns from the worker
registry, and adjusts before each trial as workers come and go. "The same machine" is
the running kernel (its boot id), which containers on one host share, so replicas in
separate containers count each other.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def machine_id() -> str:
    """An identifier shared by every process (and container) on this kernel instance."""
    try:
        return BOOT_ID.read_text().strip()[:64] or socket.gethostname()
    except OSError:  # not Linux
        return socket.gethostname()[:64]


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs granted by the cgroup's quota (v2 ``cpu.max`` or v1 CFS files), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def usable_cpus(quota: float | None = None) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


def threads_per_worker(cpus: int, workers_on_machine: int) -> int:
    """An equal share of ``cpus`` among the machine's workers, at least one."""
    return max(1, cpus // max(1, workers_on_machine))


def omp_threads() -> int | None:
    """``OMP_NUM_THREADS``, when the environment sets it (a user's or a scheduler's fix)."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
