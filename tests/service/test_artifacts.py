"""Nothing a search trains is lost: checkpoints, exact resume, the best models kept and served.

The workers here run in this process (a worker that "dies" raises out of its step), on
SQLite and PostgreSQL; tests/service/test_cluster.py kills real worker processes.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from fastapi.testclient import TestClient

from cellsearch.models.model_file import read_model
from cellsearch.search.record import Attr
from cellsearch.search.study.limits import parse_spec
from cellsearch.search.tasks import build_task
from cellsearch.search.tasks.catalog import TaskSpec
from cellsearch.search.trial import objective
from cellsearch.search.trial.evaluation import evaluate, move_splits
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.search.worker.loop import Worker
from cellsearch.service.artifacts.index import SqlArtifactIndex
from cellsearch.service.settings import Settings
from cellsearch.service.store.db import engine_for, optuna_storage
from cellsearch.service.studies.operations import create_study
from cellsearch.service.workers.runner import sql_backend, trial_artifacts
from tests.conftest import app_client

V1 = "/api/v1"
TASK = {"kind": "adding", "seq_len": 8, "n_train": 96, "n_val": 32, "n_test": 32}


def spec_of(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "name": name, "task": TASK, "pruner": "none", "sampler": "random",
        "space": {"cell_type": ["lstm", "gru"], "hidden_size": {"low": 4, "high": 8},
                  "num_layers": 2, "dropout": 0.2},
        "budget": {"n_trials": 4, "max_epochs": 3}, **overrides,
    }  # fmt: skip


@pytest.fixture
def kept(migrated: Settings, tmp_path: Path) -> Settings:
    """Settings with a store of their own, a checkpoint every epoch and one model a cell."""
    return migrated.model_copy(
        update={
            "artifact_dir": str(tmp_path / "store"),
            "checkpoint_every_s": 0.0,
            "keep_top_k": 1,
        }
    )


@pytest.fixture
def served(kept: Settings) -> Iterator[TestClient]:
    with app_client(kept) as client:
        yield client


def submit(settings: Settings, name: str, **overrides: Any) -> optuna.Study:
    spec = parse_spec(spec_of(name, **overrides))
    create_study(engine=engine_for(settings), storage=optuna_storage(settings), spec=spec)
    return optuna.load_study(study_name=name, storage=optuna_storage(settings))


def worker_of(settings: Settings) -> Worker:
    engine, storage = engine_for(settings), optuna_storage(settings)
    return Worker(
        storage, sql_backend(engine, grace_period=settings.grace_period),
        device=torch.device("cpu"), poll_interval=0.01,
        keeper=trial_artifacts(settings, engine, storage),
    )  # fmt: skip


def drain(worker: Worker) -> None:
    while worker.step() is not None:
        pass


REAL_TRAIN = objective.train


def dies_after(epoch: int) -> Any:
    """The trainer of a worker that is killed once epoch ``epoch`` (and its checkpoint) is
    done: it raises out of the worker's step, leaving the trial running."""

    def train(*args: Any, **kwargs: Any) -> Any:
        model, data, config, device, on_epoch = args

        def until(result: Any) -> bool:
            if result.epoch > epoch:
                raise KeyboardInterrupt
            return bool(on_epoch(result))

        return REAL_TRAIN(model, data, config, device, until, **kwargs)

    return train


def killed_after_epoch_2(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, name: str
) -> ArtifactEntry:
    """A one-trial study ``name`` (GRU, 4 epochs) whose worker dies once epoch 2 is done:
    its trial's one checkpoint in the index."""
    space = {"cell_type": "gru", "hidden_size": 6}
    submit(settings, name, budget={"n_trials": 1, "max_epochs": 4}, space=space)
    monkeypatch.setattr(objective, "train", dies_after(2))
    with pytest.raises(KeyboardInterrupt):
        worker_of(settings).step()
    monkeypatch.setattr(objective, "train", REAL_TRAIN)
    (checkpoint,) = SqlArtifactIndex(engine_for(settings)).of_trials(name, [0], "checkpoint")
    return checkpoint


def rescue(settings: Settings) -> None:
    """Another worker, once the dead one's trial is stale, runs everything left (a trial
    that never wrote a heartbeat is stale a grace period after the rescuer first saw it)."""
    rescuer = worker_of(settings)
    rescuer.recover_stale(force=True)
    time.sleep(settings.grace_period + 1.5)
    assert rescuer.recover_stale(force=True) == 1
    drain(rescuer)


def trials_of(settings: Settings, name: str) -> list[optuna.trial.FrozenTrial]:
    """Every trial of a study as stored now (a Study loaded earlier caches its trials)."""
    return optuna.load_study(study_name=name, storage=optuna_storage(settings)).get_trials()


def store_files(settings: Settings) -> set[str]:
    assert settings.artifact_dir is not None
    return {p.name for p in Path(settings.artifact_dir).iterdir()}


def test_the_best_model_of_each_cell_is_kept_served_and_reproduces_its_test_metric(
    kept: Settings, served: TestClient
) -> None:
    study = submit(kept, "kept")
    drain(worker_of(kept))
    index = SqlArtifactIndex(engine_for(kept))
    models = index.models("kept")
    assert sorted(m.cell_type or "" for m in models) == ["gru", "lstm"]  # keep_top_k = 1
    assert store_files(kept) == {m.id for m in models}  # no checkpoint left behind
    for model in models:
        trials = [t for t in study.trials if t.params["cell_type"] == model.cell_type]
        best = min(trials, key=lambda t: t.value or math.inf)
        assert model.trial_number == best.number and model.value == best.value
    listed = served.get(f"{V1}/studies/kept/models").json()
    assert {m["cell_type"] for m in listed} == {"gru", "lstm"}
    response = served.get(f"{V1}/studies/kept/models/gru")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    net, info = read_model(response.content)
    (gru,) = [m for m in models if m.cell_type == "gru"]
    trial = study.trials[gru.trial_number]
    data = build_task(_task(info["task"]), info["data_seed"])
    test = evaluate(net, move_splits(data, torch.device("cpu"))["test"], data, 64)
    assert abs(test.loss - trial.user_attrs["test_loss"]) < 1e-6
    assert info["objective"]["value"] == trial.value and info["trial"] == trial.number
    expected = dict(data.meta.preprocessing) if data.meta.preprocessing else None
    assert info["preprocessing"] == {"standardised": expected, "classes": None}  # regression
    by_trial = served.get(f"{V1}/studies/kept/trials/{trial.number}/model")
    assert by_trial.content == response.content
    listed_in_optuna = optuna.artifacts.get_all_artifact_meta(study)
    assert {m.artifact_id for m in listed_in_optuna} == {m.id for m in models}
    detail = served.get(f"{V1}/studies/kept").json()
    assert detail["artifact_bytes"] == sum(m.size_bytes for m in models)
    assert served.get(f"{V1}/healthz").json()["artifact_store"] == str(
        Path(kept.artifact_dir or "").resolve()
    )


def _task(task: dict[str, Any]) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(TaskSpec).validate_python(task)


def test_a_requeued_copy_resumes_and_ends_as_the_run_that_never_stopped(
    kept: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    budget = {"n_trials": 1, "max_epochs": 5}
    space = {"cell_type": "gru", "hidden_size": 6, "num_layers": 2, "dropout": 0.2}
    submit(kept, "whole", budget=budget, space=space)
    drain(worker_of(kept))
    submit(kept, "broken", budget=budget, space=space)
    monkeypatch.setattr(objective, "train", dies_after(3))
    dying = worker_of(kept)
    with pytest.raises(KeyboardInterrupt):
        dying.step()
    monkeypatch.setattr(objective, "train", REAL_TRAIN)
    rescue(kept)
    (original, copy) = trials_of(kept, "broken")
    assert original.user_attrs["failure_kind"] == "stale"
    assert copy.user_attrs[Attr.RESUMED_FROM] == 3 and copy.user_attrs[Attr.RETRY_OF] == 0
    (reference,) = trials_of(kept, "whole")
    assert copy.intermediate_values == reference.intermediate_values  # the whole curve, once
    assert copy.value == reference.value
    assert copy.user_attrs["test_metric"] == reference.user_attrs["test_metric"]
    index = SqlArtifactIndex(engine_for(kept))
    assert index.of_trials("broken", [0, 1], "checkpoint") == []  # cleaned up at the end
    a = _weights(kept, "whole", 0)
    b = _weights(kept, "broken", 1)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _weights(settings: Settings, study: str, number: int) -> dict[str, torch.Tensor]:
    from cellsearch.service.artifacts.operations import store_for, stream, trial_model

    model = trial_model(engine=engine_for(settings), name=study, number=number)
    net, _ = read_model(b"".join(stream(store_for(settings), model.entry.id)))
    return net.state_dict()


def test_a_damaged_checkpoint_restarts_the_copy_and_says_why(
    kept: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = killed_after_epoch_2(kept, monkeypatch, "damaged")
    path = Path(kept.artifact_dir or "") / checkpoint.id
    path.write_bytes(path.read_bytes()[:200])  # truncated, as a kill during the write would
    rescue(kept)
    copy = trials_of(kept, "damaged")[1]
    assert copy.state == optuna.trial.TrialState.COMPLETE
    assert Attr.RESUMED_FROM not in copy.user_attrs
    note = copy.user_attrs[Attr.RESUME_NOTE]
    assert "trial 0 after epoch 2 is unusable" in note and "restarted from epoch 0" in note
    assert sorted(copy.intermediate_values) == [1, 2, 3, 4]


def test_a_model_over_the_studys_byte_limit_is_not_kept_and_the_trial_says_so(
    kept: Settings,
) -> None:
    tight = kept.model_copy(update={"max_artifact_bytes": 10})
    study = submit(tight, "tight", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(tight))
    assert SqlArtifactIndex(engine_for(tight)).models("tight") == []
    notes = [t.user_attrs.get(Attr.ARTIFACT_NOTE) for t in study.trials]
    assert all(n and "max_artifact_bytes=10" in n for n in notes)


def test_downloads_say_why_there_is_no_model(kept: Settings, served: TestClient) -> None:
    study = submit(kept, "why", budget={"n_trials": 4, "max_epochs": 1})
    drain(worker_of(kept))
    index = SqlArtifactIndex(engine_for(kept))
    kept_numbers = {m.trial_number for m in index.models("why")}
    (dropped,) = [t.number for t in study.trials if t.number not in kept_numbers][:1]
    cases = {
        f"{V1}/studies/why/trials/{dropped}/model": "only the best completed trials",
        f"{V1}/studies/why/trials/99/model": "has no trial 99",
        f"{V1}/studies/why/models/mgu": "searches lstm, gru, not 'mgu'",
        f"{V1}/studies/nope/models/gru": "not found",
    }
    for url, why in cases.items():
        response = served.get(url)
        assert response.status_code == 404 and why in response.json()["detail"], url
    assert served.get(f"{V1}/studies/why/models/..%2F..%2Fetc").status_code in (404, 422)


def test_deleting_a_study_removes_its_artifacts_even_after_a_crash(
    kept: Settings, served: TestClient
) -> None:
    from sqlalchemy import select

    from cellsearch.service.artifacts.operations import detach, store_for, sweep
    from cellsearch.service.store.db import connection_scope
    from cellsearch.service.store.tables import StudyRecord

    submit(kept, "gone", budget={"n_trials": 2, "max_epochs": 1})
    submit(kept, "stays", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(kept))
    stays = {m.id for m in SqlArtifactIndex(engine_for(kept)).models("stays")}
    assert served.delete(f"{V1}/studies/gone").status_code == 204
    assert store_files(kept) == stays
    # a crash after detaching, before the sweep: the next sweep finds them
    with connection_scope(engine_for(kept)) as conn:
        conn.execute(detach(select(StudyRecord.id).where(StudyRecord.name == "stays")))
    assert sweep(engine=engine_for(kept), store=store_for(kept)) == len(stays)
    assert store_files(kept) == set()


def test_a_study_made_again_under_its_name_does_not_see_the_old_models(
    kept: Settings, served: TestClient
) -> None:
    submit(kept, "again", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(kept))
    assert served.delete(f"{V1}/studies/again").status_code == 204
    submit(kept, "again", budget={"n_trials": 2, "max_epochs": 1})
    assert served.get(f"{V1}/studies/again/models").json() == []
    assert store_files(kept) == set()  # nothing of the first study is left


def test_optuna_dashboard_lists_the_kept_models(kept: Settings) -> None:
    import json
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    from cellsearch.service.artifacts.operations import store_for

    study = submit(kept, "shown", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(kept))
    app = optuna_dashboard.wsgi(optuna_storage(kept), artifact_store=store_for(kept))
    environ: dict[str, Any] = {"PATH_INFO": f"/api/studies/{study._study_id}"}
    setup_testing_defaults(environ)
    answer = b"".join(app(environ, lambda *_response: None))
    listed = {a["artifact_id"] for a in json.loads(answer)["artifacts"]}
    assert listed == {m.id for m in SqlArtifactIndex(engine_for(kept)).models("shown")}


def test_the_dashboard_command_opens_the_artifact_store(
    kept: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna_dashboard
    from typer.testing import CliRunner

    from cellsearch.service.cli import app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda *a, **k: seen.update(k))
    monkeypatch.setenv("CELLSEARCH_ARTIFACT_DIR", kept.artifact_dir or "")
    result = CliRunner().invoke(app, ["dashboard", "--database-url", kept.database_url])
    assert result.exit_code == 0, result.output
    assert seen["artifact_store"] is not None


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A bucket on a real S3-compatible server (moto's, in a thread) for this test."""
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_ENDPOINT_URL": endpoint}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    # moto keeps its buckets per process, across servers: a bucket of this test's own
    bucket = f"models-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        server.stop()


def test_models_kept_in_an_s3_compatible_bucket(
    kept: Settings, s3_bucket: str, served: TestClient
) -> None:
    import boto3

    from cellsearch.service.artifacts.operations import store_for

    bucketed = kept.model_copy(update={"artifact_url": f"s3://{s3_bucket}/cellsearch"})
    submit(bucketed, "bucketed", budget={"n_trials": 2, "max_epochs": 2})
    drain(worker_of(bucketed))
    models = SqlArtifactIndex(engine_for(bucketed)).models("bucketed")
    assert models
    listed = boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert {o["Key"] for o in listed} == {f"cellsearch/{m.id}" for m in models}
    from cellsearch.service.artifacts.operations import stream

    net, info = read_model(b"".join(stream(store_for(bucketed), models[0].id)))
    assert info["study"] == "bucketed" and isinstance(net, torch.nn.Module)


def test_the_client_and_the_cli_download_and_load_kept_models(
    kept: Settings,
    served: TestClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from typer.testing import CliRunner

    import cellsearch
    from cellsearch.client import Client, NotFound
    from cellsearch.service.cli import app

    submit(kept, "fetched", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(kept))
    client = Client("http://testserver", api_key="", http=served)
    listed = client.models.list("fetched")
    assert {m.cell_type for m in listed} == {"lstm", "gru"}
    saved = client.models.download("fetched", cell="gru", path=tmp_path / "gru.safetensors")
    net, info = cellsearch.load_model(saved)
    assert isinstance(net, torch.nn.Module) and info["model"]["cell"] == "gru"
    loaded, again = client.models.load("fetched", trial=listed[0].trial_number)
    assert again["trial"] == listed[0].trial_number and not loaded.training
    with pytest.raises(NotFound, match="searches lstm, gru"):
        client.models.download("fetched", cell="mgu", path=tmp_path / "x")
    with pytest.raises(ValueError, match="not both"):
        client.models.download("fetched", cell="gru", trial=0)

    cli_app = importlib.import_module("cellsearch.service.cli.app")
    monkeypatch.setattr(cli_app, "Client", lambda *a, **k: client)
    runner = CliRunner()
    out = tmp_path / "cli.safetensors"
    result = runner.invoke(app, ["model", "download", "fetched", "--cell", "lstm", "-o", str(out)])
    assert result.exit_code == 0 and out.read_bytes()[:8] and "saved" in result.output
    table = runner.invoke(app, ["model", "list", "fetched"])
    assert table.exit_code == 0 and "lstm" in table.output and "gru" in table.output
    refused = runner.invoke(app, ["model", "download", "fetched"])
    assert refused.exit_code == 1 and "--cell" in refused.output


def _report_text(client: TestClient, name: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """What `cellsearch report NAME` prints, the commands talking to ``client``'s app."""
    import importlib

    from typer.testing import CliRunner

    from cellsearch.client import Client
    from cellsearch.service.cli import app

    cli_app = importlib.import_module("cellsearch.service.cli.app")
    api = Client("http://testserver", api_key="", http=client)
    monkeypatch.setattr(cli_app, "Client", lambda *a, **k: api)
    result = CliRunner().invoke(app, ["report", name])
    assert result.exit_code == 0, result.output
    return result.output


def test_the_report_links_each_cells_best_kept_model(
    kept: Settings, served: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import urljoin

    submit(kept, "linked", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(kept))
    models = SqlArtifactIndex(engine_for(kept)).models("linked")
    assert {m.cell_type for m in models} == {"lstm", "gru"}  # keep_top_k = 1: the best
    page_url = f"http://testserver{V1}/studies/linked/report.html"
    page = served.get(page_url)
    assert page.status_code == 200 and "id='kept-models'" in page.text
    for model in models:
        assert f"href='models/{model.cell_type}'" in page.text
        link = urljoin(page_url, f"models/{model.cell_type}")
        assert link == f"http://testserver{V1}/studies/linked/models/{model.cell_type}"
        by_trial = served.get(f"{V1}/studies/linked/trials/{model.trial_number}/model")
        assert served.get(link).content == by_trial.content
    again = served.get(page_url, headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304

    text = _report_text(served, "linked", monkeypatch)
    block = text[text.index("Kept models (the best of each cell type):") :]
    assert max(len(line) for line in text.splitlines()) <= 80
    for model in models:
        assert f"{model.cell_type}: trial {model.trial_number}, " in block
        assert f"cellsearch model download linked --cell {model.cell_type}\n" in block


def test_a_report_without_kept_models_shows_no_downloads(
    kept: Settings, served: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    none_kept = kept.model_copy(update={"keep_top_k": 0})
    submit(none_kept, "unkept", budget={"n_trials": 2, "max_epochs": 1})
    drain(worker_of(none_kept))
    assert SqlArtifactIndex(engine_for(kept)).models("unkept") == []
    page = served.get(f"{V1}/studies/unkept/report.html")
    assert page.status_code == 200 and "id='best-configs'" in page.text  # trials completed
    assert "kept-models" not in page.text and "href='models/" not in page.text
    text = _report_text(served, "unkept", monkeypatch)
    assert "Best configuration per cell type:" in text
    assert "Kept models" not in text and "cellsearch model download" not in text


def test_a_store_that_fails_never_changes_a_trials_outcome(
    kept: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    def full_disk(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemArtifactStore, "write", full_disk)
    submit(kept, "full", budget={"n_trials": 2, "max_epochs": 3})
    drain(worker_of(kept))
    trials = trials_of(kept, "full")
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all("No space left" in t.user_attrs[Attr.ARTIFACT_NOTE] for t in trials)
    index = SqlArtifactIndex(engine_for(kept))
    assert index.models("full") == [] and index.of_trials("full", [0, 1], "checkpoint") == []


def test_a_checkpoint_that_failed_to_write_leaves_no_record_and_the_next_is_written(
    kept: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from optuna.artifacts import FileSystemArtifactStore

    real_write, calls = FileSystemArtifactStore.write, []

    def fails_first(store: Any, artifact_id: str, body: Any) -> None:
        calls.append(artifact_id)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real_write(store, artifact_id, body)

    monkeypatch.setattr(FileSystemArtifactStore, "write", fails_first)
    checkpoint = killed_after_epoch_2(kept, monkeypatch, "flaky")
    assert checkpoint.epoch == 2 and calls[1] == checkpoint.id  # epoch 1's failed
    assert store_files(kept) == {checkpoint.id}
    rescue(kept)
    copy = trials_of(kept, "flaky")[1]
    assert copy.user_attrs[Attr.RESUMED_FROM] == 2 and Attr.RESUME_NOTE not in copy.user_attrs
