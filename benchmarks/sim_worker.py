"""Light workers for the scale-out benchmark: the real worker loop, simulated training.

:func:`prepare` must run before anything imports cellsearch's trial code. It puts a stub
``torch`` in front of the real one (no torch is ever imported: a simulated worker takes
tens of MB, not hundreds) and replaces, in the real objective, the model and the trainer
by a simulated learning curve: each epoch sleeps ``epoch_s`` seconds (the training time
of a trial, spent off the CPU as on a GPU) and reports a validation loss that decays
towards a value set by the trial's learning rate and hidden size, with noise. Everything
else is the real worker: the budget claim, the deal and the sampler, ``report`` and the
pruner, the heartbeat thread and the registry, the trial record, ``tell``, stale-trial
recovery and settling, and the idle wait (LISTEN/NOTIFY or polling).

:func:`run_child` is the body of one forked worker process: it builds a worker as
``cellsearch worker`` does (:func:`cellsearch.service.workers.runner.build_worker`,
without a device, warm-up or artifact keeper), times every claim, runs until SIGTERM and
writes what it measured as JSON.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import math
import os
import random
import signal
import sys
import time
import types
from pathlib import Path
from typing import Any


class _Anything:
    """Stands for any torch object at import time (a base class, a decorator, a type)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> _Anything:
        return _Anything()

    def __getattr__(self, name: str) -> _Anything:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Anything()

    def __mro_entries__(self, bases: tuple[object, ...]) -> tuple[type, ...]:
        return (object,)

    def __getitem__(self, key: object) -> _Anything:
        return _Anything()

    def __or__(self, other: object) -> _Anything:
        return _Anything()

    __ror__ = __or__


class _Device(str):
    """``torch.device`` of the stub: the name, with its ``type``."""

    @property
    def type(self) -> str:
        return self.split(":")[0]


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _Anything()


class _StubTorch(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers every import of ``torch`` (and its modules) with a stub module."""

    def find_spec(self, name: str, path: object, target: object = None) -> Any:
        if name == "torch" or name.startswith("torch.") or name == "safetensors.torch":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        if spec.name == "torch":
            vars(module).update(
                __version__="0+simulated",
                device=_Device,
                get_num_threads=lambda: 1,
                set_num_threads=lambda n: None,
                manual_seed=lambda seed: None,
            )
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _Model:
    def __init__(self, hidden_size: int, num_layers: int = 1, **_: object) -> None:
        self.param_count = 4 * hidden_size * (hidden_size + 2) * num_layers + hidden_size + 1

    def to(self, device: object) -> _Model:
        return self


_EPOCH_S = [0.0]  # a simulated epoch's seconds (set per run, before the workers fork)


def prepare_epochs(epoch_s: float) -> None:
    """Set the seconds each simulated epoch sleeps."""
    _EPOCH_S[0] = epoch_s


def prepare(epoch_s: float) -> None:
    """Stub torch and simulate training in this process (before cellsearch's trial code
    is imported)."""
    prepare_epochs(epoch_s)
    if "torch" in sys.modules and not isinstance(sys.modules["torch"], _StubModule):
        raise RuntimeError("torch is already imported: prepare() must come first")
    sys.meta_path.insert(0, _StubTorch())
    from cellsearch.search.trial import objective, trainer
    from cellsearch.search.trial.checkpoint import EpochResult

    def simulated_train(model: Any, data: Any, config: Any, device: Any, on_epoch: Any,
                        **_: Any) -> Any:  # fmt: skip
        rng = random.Random(hash((config.learning_rate, model.param_count)))
        floor = 0.05 + abs(math.log10(config.learning_rate) + 2.5) * 0.1 + 50 / model.param_count
        best, best_epoch, history = math.inf, 0, []
        stop: Any = "completed"
        start = time.perf_counter()
        for epoch in range(1, config.max_epochs + 1):
            time.sleep(_EPOCH_S[0])
            loss = floor + 0.5 * math.exp(-epoch / 2) + rng.gauss(0, 0.01)
            result = EpochResult(epoch, loss, loss, loss, _EPOCH_S[0])
            history.append(result)
            if loss < best:
                best, best_epoch = loss, epoch
            if not on_epoch(result):
                stop = "stopped"
                break
        seconds = time.perf_counter() - start
        return trainer.TrainResult(
            epochs_run=len(history), best_epoch=best_epoch, best_val_loss=best,
            best_val_metric=best, test_loss=best, test_metric=best, seconds=seconds,
            seconds_per_epoch=seconds / len(history), samples_per_second=0.0,
            stop_reason=stop, history=tuple(history),
        )  # fmt: skip

    stand_ins: dict[str, Any] = {
        "train": simulated_train,
        "SequenceModel": lambda **kw: _Model(**kw),
        "count_parameters": lambda model: model.param_count,
        "model_file": lambda *args, **kwargs: None,
    }
    vars(objective).update(stand_ins)


def _data() -> Any:
    meta = types.SimpleNamespace(input_size=2, output_size=1, head="last", metric="mse")
    return types.SimpleNamespace(meta=meta)


def run_child(settings: Any, stats_path: Path) -> None:
    """One forked worker: run until SIGTERM, then write its measurements to ``stats_path``.

    Measured: the wall time of every budget claim (the worker's one ``UPDATE``, with its
    wait for a connection and the server), trials run, and errors logged.
    """
    import logging

    from cellsearch.search.worker.loop import Worker
    from cellsearch.service.store.db import engine_for, optuna_storage
    from cellsearch.service.workers.runner import sql_backend
    from cellsearch.service.workers.wakeup import work_signal

    errors: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                lines = record.getMessage().splitlines() or [""]  # a traceback: its end
                errors.append(
                    lines[0][:200] + ("" if len(lines) == 1 else f" ... {lines[-1][:200]}")
                )

    logging.getLogger().addHandler(Count())
    storage = optuna_storage(settings, worker=True)
    engine = engine_for(settings, worker=True)
    backend = sql_backend(engine, grace_period=settings.grace_period,
                          signal=work_signal(settings, engine))  # fmt: skip
    worker = Worker(storage, backend, device="cpu", poll_interval=settings.poll_interval,  # type: ignore[arg-type]
                    idle_poll_max=settings.idle_poll_max, torch_threads=1)  # fmt: skip
    worker._task_data = lambda spec: _data()  # type: ignore[method-assign]
    claims: list[float] = []
    claim = worker.ledger.claim

    def timed_claim() -> Any:
        start = time.perf_counter()
        try:
            return claim()
        finally:
            claims.append(time.perf_counter() - start)

    worker.ledger.claim = timed_claim  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    ran = worker.run()
    stats = {"pid": os.getpid(), "trials": ran, "claims": claims, "errors": errors}
    stats_path.write_text(json.dumps(stats))
