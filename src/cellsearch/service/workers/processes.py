"""Running workers as child processes (``serve`` and ``worker --gpus``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from cellsearch.service.settings import Settings


def worker_command(settings: Settings, device: str) -> list[str]:
    """The command line of one worker process."""
    return [
        sys.executable, "-m", "cellsearch", "worker",
        "--database-url", settings.database_url, "--device", device,
    ]  # fmt: skip


def spawn_workers(
    settings: Settings, slots: Sequence[tuple[str, dict[str, str]]]
) -> list[subprocess.Popen[bytes]]:
    """Start one worker per ``(device, extra environment)`` slot."""
    procs = []
    for device, extra_env in slots:
        env = {**os.environ, **extra_env, "CELLSEARCH_DATABASE_URL": settings.database_url}
        procs.append(subprocess.Popen(worker_command(settings, device), env=env))
    return procs


def stop_workers(procs: Sequence[subprocess.Popen[bytes]], timeout: float) -> None:
    """SIGTERM every worker, wait up to ``timeout`` seconds, then SIGKILL the rest."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def gpu_slots(gpus: str, per_gpu: int) -> list[tuple[str, dict[str, str]]]:
    """One slot per GPU and per-GPU process, each seeing only its GPU as ``cuda:0``."""
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise ValueError(f"--gpus expects a list of GPU indices such as 0,1; got {gpus!r}")
    if per_gpu < 1:
        raise ValueError(f"--per-gpu must be at least 1; got {per_gpu}")
    return [("cuda:0", {"CUDA_VISIBLE_DEVICES": g}) for g in ids for _ in range(per_gpu)]
