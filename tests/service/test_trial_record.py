"""A trial written by the worker reads back identically everywhere it is read.

Writers and readers of the trial record all go through ``cellsearch.search.record``; this
test runs real trials through the worker and reads them back through every reader: the
record itself, the trials API, the study detail's best trial, the SQL aggregate behind the
progress counts, the sampler's per-cell view and the report.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import optuna
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from cellsearch.search.record import Attr, TrialRecord, cell_of, is_counted
from cellsearch.search.study.allocation import CellConditionedSampler
from cellsearch.search.trial.objective import PRUNED
from cellsearch.service.api.schemas import trial_out
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for
from cellsearch.service.studies.operations import trial_counts
from tests.service.test_worker import drain, make_study, make_worker

V1 = "/api/v1"


def as_json(value: Any) -> Any:
    """``value`` as a client reads it back (JSON object keys are strings)."""
    return json.loads(json.dumps(jsonable_encoder(value)))


def as_api(value: Any) -> Any:
    """Trial records as the API writes them (pydantic: a UTC time ends in Z)."""
    return json.loads(TypeAdapter(Any).dump_json(value))


def test_every_reader_sees_the_record_the_worker_wrote(api: TestClient, migrated: Settings) -> None:
    study = make_study(migrated, space={"cell_type": ["lstm", "gru", "mgu"], "hidden_size": 6})
    worker, _ = make_worker(migrated)
    assert drain(worker) == 4
    trials = study.get_trials()
    records = [TrialRecord.of(t) for t in trials]

    for trial, record in zip(trials, records, strict=True):
        assert record.cell_type == trial.params["cell_type"] == trial.user_attrs["cell_type"]
        assert record.param_count is not None and record.param_count > 0
        assert record.hidden_size == 6 and record.num_layers == 1
        assert record.device == "cpu" and isinstance(record.seed, int)
        assert record.epochs_run == 2 and set(record.learning_curve) == {1, 2}
        assert record.test_metric_name == "mse" and record.stop_reason == "completed"
        assert record.value == pytest.approx(trial.value)

    # the trials API serves exactly the record, field by field (its times in UTC, with
    # their offset: Optuna keeps them naive, in the worker's local time)
    page = api.get(f"{V1}/studies/adding-t20/trials").json()
    assert page["items"] == as_api([trial_out(t) for t in trials])
    assert all(r.started_at is not None for r in records)
    assert all(t["started_at"].endswith("Z") for t in page["items"])
    for cell in ("lstm", "gru", "mgu"):
        listed = api.get(f"{V1}/studies/adding-t20/trials", params={"cell_type": cell}).json()
        assert [t["number"] for t in listed["items"]] == [
            r.number for r in records if r.cell_type == cell
        ]

    # the best trial of the study detail is the record of Optuna's best trial
    detail = api.get(f"{V1}/studies/adding-t20").json()
    assert detail["best_trial"] == as_api(trial_out(study.best_trial))

    # the SQL aggregate (attributes) agrees with the records (parameters first)
    expected = Counter(r.cell_type for r, t in zip(records, trials, strict=True) if is_counted(t))
    counts = trial_counts(engine=engine_for(migrated), names=["adding-t20"])["adding-t20"]
    assert counts.by_cell == dict(sorted(expected.items()))
    assert detail["counts"]["by_cell"] == counts.by_cell

    # the report groups by the same cell types
    report = api.get(f"{V1}/studies/adding-t20/report").json()
    assert {c["cell_type"]: c["n_completed"] for c in report["cells"]} == {
        cell: expected[cell] for cell in ("lstm", "gru", "mgu")
    }

    # the sampler's per-cell view shows each cell's trials and nothing else
    for cell in ("lstm", "gru", "mgu"):
        view = CellConditionedSampler(cell, optuna.samplers.RandomSampler())._view(study)
        assert [t.number for t in view.get_trials()] == [
            r.number for r in records if r.cell_type == cell
        ]


def test_a_running_trial_reads_its_cell_from_the_parameter(migrated: Settings) -> None:
    """Before any attribute is written, the sampled parameter names the cell."""
    study = make_study(migrated)
    trial = study.ask()
    trial.suggest_categorical("cell_type", ["lstm", "gru"])
    frozen = study.get_trials()[0]
    assert Attr.CELL_TYPE not in frozen.user_attrs
    assert cell_of(frozen) == TrialRecord.of(frozen).cell_type == trial.params["cell_type"]
    assert TrialRecord.of(frozen).state == "running"


def test_failure_and_retry_attributes_round_trip(migrated: Settings) -> None:
    from cellsearch.search.record import failure_attrs, failure_kind, retry_attrs

    study = make_study(migrated)
    trial = study.ask(fixed_distributions={})
    for key, value in {**failure_attrs("diverged", "loss is nan"), **retry_attrs(3, "x")}.items():
        trial.set_user_attr(key, value)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    frozen = study.get_trials()[0]
    record = TrialRecord.of(frozen)
    assert (record.failure_kind, record.failure_reason) == ("diverged", "loss is nan")
    assert (record.retry_of, record.retry_reason) == (3, "x")
    assert failure_kind(frozen) == "diverged" and is_counted(frozen)
    assert frozen.state != PRUNED
    with pytest.raises(ValueError, match="unknown failure kind 'boom'"):
        failure_attrs("boom", None)


def test_bf16_asked_on_a_cpu_worker_trains_fp32_and_says_so(migrated: Settings) -> None:
    study = make_study(migrated, precision="bf16", budget={"n_trials": 1, "max_epochs": 1})
    worker, _ = make_worker(migrated)
    assert drain(worker) == 1
    record = TrialRecord.of(study.get_trials()[0])
    assert record.precision == "fp32"
    assert record.notes is not None and "bf16 ignored on cpu" in record.notes
    assert record.peak_memory_bytes is None  # measured on CUDA only
