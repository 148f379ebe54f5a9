"""Which torch device a worker trains on, and giving its memory back after a failure."""

from __future__ import annotations

import gc
import logging

import torch

from cellsearch.search.errors import WorkerError

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable device.

    Raises:
        WorkerError: CUDA is asked for but unavailable, or the index is out of range.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise WorkerError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise WorkerError(f"device {name!r} asked for, but CUDA is not available here")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise WorkerError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible"
            )
    elif device.type != "cpu":
        raise WorkerError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


def release_cached_memory(device: torch.device) -> tuple[int, int] | None:
    """Free what a failed trial left behind, and on CUDA give the cache back to the driver.

    After an exception (a CUDA out-of-memory error above all) the trial's tensors become
    garbage once its frames are gone; PyTorch's caching allocator would still hold their
    blocks, which the other processes sharing the GPU (``--per-gpu``) could then not use.

    Returns:
        Bytes reserved by the allocator before and after, on CUDA; None elsewhere.
    """
    gc.collect()  # tensors kept alive by reference cycles through the traceback's frames
    if device.type != "cuda":
        return None
    before = torch.cuda.memory_reserved(device)
    torch.cuda.empty_cache()
    after = torch.cuda.memory_reserved(device)
    log.info("released cached GPU memory after a failed trial: %.0f MiB -> %.0f MiB reserved",
             before / 2**20, after / 2**20)  # fmt: skip
    return before, after
