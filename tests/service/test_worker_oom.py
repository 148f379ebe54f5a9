"""A trial that runs out of memory is an ``error`` outcome; the worker frees it and goes on."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import optuna
import pytest
import torch

from cellsearch.search.trial import objective
from cellsearch.search.worker import device as device_module
from cellsearch.search.worker.device import release_cached_memory
from cellsearch.service.settings import Settings
from tests.service.test_worker import drain, make_study, make_worker

COMPLETE, FAIL = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
OOM_MESSAGE = "CUDA out of memory. Tried to allocate 512.00 GiB"


def test_out_of_memory_is_an_error_outcome_and_the_worker_goes_on(
    migrated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_train = objective.train
    calls: list[int] = []

    def out_of_memory_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError(OOM_MESSAGE)
        return real_train(*args, **kwargs)

    released: list[tuple[int, torch.device]] = []
    monkeypatch.setattr(objective, "train", out_of_memory_once)
    monkeypatch.setattr(device_module, "release_cached_memory",
                        lambda device: released.append((len(calls), device)))  # fmt: skip
    study = make_study(migrated)
    worker, _ = make_worker(migrated)
    assert drain(worker) == 4
    first, *rest = sorted(study.trials, key=lambda t: t.number)
    assert first.state == FAIL
    assert first.user_attrs["failure_kind"] == "error"
    assert first.user_attrs["failure_reason"] == f"OutOfMemoryError: {OOM_MESSAGE}"
    assert [t.state for t in rest] == [COMPLETE] * 3
    # freed once, after the failed trial and before the next one started
    assert released == [(1, torch.device("cpu"))]


def test_release_collects_garbage_held_in_reference_cycles() -> None:
    class Frame:  # stands for a traceback's frame that refers back to itself
        pass

    gc.disable()
    try:
        frame = Frame()
        frame.self = frame  # type: ignore[attr-defined]
        frame.tensor = torch.zeros(1024)  # type: ignore[attr-defined]
        alive = weakref.ref(frame)
        del frame
        assert alive() is not None  # only the cycle collector can free it
        assert release_cached_memory(torch.device("cpu")) is None
        assert alive() is None
    finally:
        gc.enable()


def test_release_on_cuda_empties_the_allocator_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    reserved = iter([3 * 2**30, 2**20])
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: next(reserved))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    assert release_cached_memory(torch.device("cuda:0")) == (3 * 2**30, 2**20)
    assert emptied == [True]


@pytest.mark.cuda
def test_a_real_cuda_out_of_memory_is_an_error_and_its_memory_is_given_back(
    migrated: Settings,
) -> None:
    # a cap of 5% of the card; the peephole LSTM's autograd loop needs tens of GiB here
    torch.cuda.set_per_process_memory_fraction(0.05)
    try:
        make_study(
            migrated,
            name="oom",
            task={"kind": "adding", "seq_len": 400, "n_train": 1024, "n_val": 32, "n_test": 32},
            space={"cell_type": ["lstm_peephole"], "hidden_size": 1024, "batch_size": 1024},
            budget={"n_trials": 1, "max_epochs": 1},
        )
        after = make_study(migrated, name="after-oom")
        worker, _ = make_worker(migrated, device=torch.device("cuda"))
        outcome = worker.step()  # the oldest study first: the one that cannot fit
        assert outcome is not None and outcome.outcome == "error"
        assert outcome.reason is not None and "out of memory" in outcome.reason.lower()
        assert torch.cuda.memory_reserved() < 256 * 2**20  # the cache went back
        assert drain(worker) == 4
        assert [t.state for t in after.get_trials()] == [COMPLETE] * 4
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
