"""A training run's whole state, to stop it anywhere between epochs and go on exactly.

:class:`TrainState` holds what the trainer's next epoch depends on: the model's and the
optimizer's state, every random state (torch's, the batch-order generator's, CUDA's,
NumPy's and Python's), the epochs run with their results, the best epoch with its test
evaluation and its weights, and the time spent. Resuming from it on the same device gives
the same learning curve, value and weights as the run that was never stopped (on CPU bit
for bit; a test kills a run at a random epoch and compares).

On disk a state is one `safetensors <https://huggingface.co/docs/safetensors>`_ file:
every tensor under a name, everything else as JSON in the file's metadata. Nothing is
unpickled on load, and :func:`load_state` refuses a file whose digest, format or
configuration does not match, so a damaged checkpoint is never half-used.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from torch import Tensor

FORMAT = "cellsearch-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: damaged, of another format or of another run."""


@dataclass(frozen=True)
class EpochResult:
    """Measurements after one epoch (``epoch`` is 1-based; ``seconds`` is this epoch's)."""

    epoch: int
    train_loss: float
    val_loss: float
    val_metric: float
    seconds: float


@dataclass
class TrainState:
    """Everything the next epoch of a run depends on (see the module docstring).

    Attributes:
        run: What identifies the run (its training configuration and model), checked on
            resume so that a state never continues another run.
        epoch: Epochs completed.
        history: Their results.
        best_epoch: The epoch of the lowest validation loss so far (0: none yet).
        best: ``val_loss``, ``val_metric``, ``test_loss``, ``test_metric`` at it.
        best_weights: The model's weights at it (None before the first epoch).
        model: The model's weights now.
        optimizer: The optimizer's ``state_dict``.
        rng: Random states: ``torch`` and ``generator`` (byte tensors), ``cuda`` (or
            None), ``numpy`` and ``python`` (JSON-able).
        train_seconds: Seconds spent in training steps (for samples per second).
        elapsed: Seconds since the run began, for its time limit.
    """

    run: dict[str, Any]
    epoch: int
    history: list[EpochResult]
    best_epoch: int
    best: dict[str, float]
    best_weights: dict[str, Tensor] | None
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0
    elapsed: float = 0.0


def seed_torch(seed: int, device: torch.device | str) -> None:
    """Seed torch's generators that a run on ``device`` draws from: the CPU's, and the
    GPUs' on CUDA; as ``torch.manual_seed`` does for them.

    ``torch.manual_seed`` also seeds every accelerator torch knows (CUDA, MPS, XPU, MTIA)
    and, where one is not initialised, queues the seeding with a formatted copy of the
    caller's stack: a few milliseconds per call on a CPU-only worker, paid twice a trial.
    """
    device = torch.device(device)
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


def capture_rng(generator: torch.Generator, device: torch.device) -> dict[str, Any]:
    """Every random state a run draws from."""
    np_state: tuple[Any, ...] = tuple(np.random.get_state(legacy=True))
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
        "python": [py_version, list(py_state), py_gauss],
    }


def restore_rng(rng: dict[str, Any], generator: torch.Generator, device: torch.device) -> None:
    """Set every random state from :func:`capture_rng`'s answer."""
    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])
    if rng.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    name, keys, *rest = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, state, gauss = rng["python"]
    random.setstate((version, tuple(state), gauss))


def dump_state(state: TrainState) -> bytes:
    """The state as the bytes of one safetensors file."""
    tensors: dict[str, Tensor] = {}
    for name, tensor in state.model.items():
        tensors[f"model.{name}"] = tensor
    for name, tensor in (state.best_weights or {}).items():
        tensors[f"best.{name}"] = tensor
    optimizer = _split_optimizer(state.optimizer, tensors)
    for name in ("torch", "generator", "cuda"):
        if state.rng.get(name) is not None:
            tensors[f"rng.{name}"] = state.rng[name]
    meta = {
        "format": FORMAT,
        "run": state.run,
        "epoch": state.epoch,
        "history": [asdict(h) for h in state.history],
        "best_epoch": state.best_epoch,
        "best": state.best,
        "has_best_weights": state.best_weights is not None,
        "optimizer": optimizer,
        "rng": {"numpy": state.rng["numpy"], "python": state.rng["python"]},
        "train_seconds": state.train_seconds,
        "elapsed": state.elapsed,
    }
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return save_tensors(cpu, metadata={"cellsearch": json.dumps(meta, allow_nan=True)})


def digest(blob: bytes) -> str:
    """The SHA-256 of a checkpoint's bytes (kept beside it, checked on load)."""
    return hashlib.sha256(blob).hexdigest()


def load_state(
    blob: bytes, *, expected_digest: str | None, run: dict[str, Any] | None = None
) -> TrainState:
    """A state from :func:`dump_state`'s bytes (the trainer checks its ``run`` against the
    run it continues; pass ``run`` to check here).

    Raises:
        CheckpointError: the bytes do not match ``expected_digest``, are not a checkpoint of
            this format, or belong to another run than ``run``.
    """
    if expected_digest is not None and digest(blob) != expected_digest:
        raise CheckpointError("its bytes do not match the digest recorded when it was written")
    try:
        tensors = load_tensors(blob)
        meta = json.loads(_metadata(blob)["cellsearch"])
    except Exception as exc:  # safetensors raises its own errors on a damaged file
        raise CheckpointError(f"it cannot be read ({type(exc).__name__}: {exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"its format is {meta.get('format')!r}, not {FORMAT!r}")
    if run is not None and meta["run"] != run:
        raise CheckpointError("it was written by a run with another configuration")
    rng = {name: tensors.get(f"rng.{name}") for name in ("torch", "generator", "cuda")}
    return TrainState(
        run=meta["run"],
        epoch=int(meta["epoch"]),
        history=[EpochResult(**h) for h in meta["history"]],
        best_epoch=int(meta["best_epoch"]),
        best=meta["best"],
        best_weights=_prefixed(tensors, "best.") if meta["has_best_weights"] else None,
        model=_prefixed(tensors, "model."),
        optimizer=_join_optimizer(meta["optimizer"], tensors),
        rng={**rng, **meta["rng"]},
        train_seconds=float(meta["train_seconds"]),
        elapsed=float(meta["elapsed"]),
    )


def _metadata(blob: bytes) -> dict[str, str]:
    """The metadata of a safetensors file (its JSON header's ``__metadata__``)."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    metadata: dict[str, str] = header.get("__metadata__") or {}
    return metadata


def _prefixed(tensors: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _split_optimizer(state_dict: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    """The optimizer's state with its tensors moved into ``tensors`` (named
    ``optim.<param>.<key>``) and a JSON skeleton left in their place."""
    state: dict[str, dict[str, Any]] = {}
    for param, values in state_dict["state"].items():
        kept: dict[str, Any] = {}
        for key, value in values.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{param}.{key}"] = value
                kept[key] = {"tensor": True}
            else:
                kept[key] = {"value": value}
        state[str(param)] = kept
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _join_optimizer(skeleton: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for param, values in skeleton["state"].items():
        state[int(param)] = {
            key: tensors[f"optim.{param}.{key}"] if held.get("tensor") else held["value"]
            for key, held in values.items()
        }
    return {"state": state, "param_groups": skeleton["param_groups"]}


class Checkpointer:
    """Writes a run's state at the end of an epoch when waiting another epoch would leave
    more than ``interval`` seconds unsaved: so a run killed at any moment loses at most
    about ``interval`` seconds of training, or one epoch where an epoch is longer.

    A write that fails (``write`` answers False: a full disk, an unreachable store) does
    not count as saved: the next epoch's end tries again, so a failure costs the epochs
    until a write succeeds, not another whole interval.

    Args:
        interval: Seconds; 0 writes after every epoch.
        write: Stores a state and answers whether it was stored (the worker's writes it
            to the artifact store).
        clock: Seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        interval: float,
        write: Callable[[TrainState], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self._write = write
        self._clock = clock
        self._last = clock()
        self.written = 0
        self.failed = 0
        self.requested = False

    def request(self) -> None:
        """Ask for a checkpoint when the run stops after this epoch (a pause or a worker
        told to exit: its copy resumes from there)."""
        self.requested = True

    def due(self, epoch_seconds: float) -> bool:
        """Whether to write after an epoch that took ``epoch_seconds``."""
        return self._clock() - self._last + epoch_seconds >= self.interval

    def write(self, state: TrainState) -> bool:
        """Store ``state`` now; whether it was stored (if not, the next epoch is due)."""
        if not self._write(state):
            self.failed += 1
            return False
        self._last = self._clock()
        self.written += 1
        return True
