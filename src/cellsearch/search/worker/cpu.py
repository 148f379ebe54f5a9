"""How a machine's CPUs are used: worker processes, and torch threads in each.

The rule, from ``benchmarks/cpu_parallelism.py`` (figures in benchmarks/WORKERS.md):
**one worker process per usable CPU, one torch thread in each**. Small recurrent models
gain nothing from intra-op threads (a step is a few small matrix products), and torch's
OpenMP threads spin and lose badly as soon as anything else wants the cores; separate
processes run separate trials and never wait on each other. So

- ``cellsearch serve`` starts :func:`default_local_workers` workers unless told
  (``--workers``, ``CELLSEARCH_LOCAL_WORKERS``);
- a worker runs torch on one thread unless told: ``CELLSEARCH_TORCH_THREADS=N`` (or
  ``OMP_NUM_THREADS``, as schedulers set it) fixes N, and ``CELLSEARCH_TORCH_THREADS=auto``
  divides the CPUs the worker may use (its affinity mask, capped by a cgroup CPU quota)
  by the number of live workers on the same machine, learnt from the worker registry
  and followed before each trial as workers come and go. "The same machine" is the
  running kernel (its boot id), which containers on one host share.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
DEFAULT_TORCH_THREADS = 1
# more local processes than this on one SQLite file only queue on its single writer
MAX_DEFAULT_LOCAL_WORKERS = 8
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


def default_local_workers(cpus: int) -> int:
    """Workers ``serve`` starts when not told: one per usable CPU, at most 8."""
    return max(1, min(cpus, MAX_DEFAULT_LOCAL_WORKERS))


def fixed_threads(setting: int | str | None) -> int | None:
    """The torch thread count a worker keeps, or None to share the machine's CPUs.

    ``setting`` is ``CELLSEARCH_TORCH_THREADS``: a count wins; ``"auto"`` shares; unset,
    ``OMP_NUM_THREADS`` when the environment sets it, else :data:`DEFAULT_TORCH_THREADS`.
    """
    if setting == "auto":
        return None
    if isinstance(setting, int):
        return setting
    return omp_threads() or DEFAULT_TORCH_THREADS
