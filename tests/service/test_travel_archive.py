"""A study archive that is damaged, tampered with, unsafe or too large is refused whole.

Each refusal is checked to store nothing: no study record or Optuna study, no data set,
no artifact row and no file in the artifact store. The archive here is of a study whose
task reads an uploaded data set and that kept a model, so every part of the layout is
exercised; its data set is found again by its bytes on a second import.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from safetensors.numpy import save as save_tensors
from sqlalchemy import func, select

from cellsearch.search.errors import DatasetError
from cellsearch.search.optuna_adapter import attach_study_artifact, bulk_read
from cellsearch.search.record import cell_of
from cellsearch.search.trial.keeping import ArtifactEntry
from cellsearch.service.artifacts.index import SqlArtifactIndex
from cellsearch.service.artifacts.operations import store_for
from cellsearch.service.artifacts.store import new_artifact_id
from cellsearch.service.errors import InvalidArchive
from cellsearch.service.settings import Settings, get_settings
from cellsearch.service.store.db import engine_for, optuna_storage, session_scope
from cellsearch.service.store.tables import ArtifactRecord, DatasetRecord, StudyRecord
from cellsearch.service.travel import layout
from cellsearch.service.travel.archive import unpack
from cellsearch.service.travel.importer import import_study
from tests.conftest import app_client
from tests.search.test_spec import spec_data
from tests.service.fuzz_rules import valid_upload
from tests.service.test_report_schema import finished_trials
from tests.service.test_travel import server

V1 = "/api/v1"
NAME = "carried"
Files = dict[str, bytes]


def archive_of(settings: Settings) -> bytes:
    """Export of a study that reads an upload and kept one model (trials added directly)."""
    with app_client(settings) as client:
        files = {"file": ("d.npz", valid_upload("classification"))}
        dataset = client.post(f"{V1}/datasets", files=files, data={"name": "digits-like"}).json()
        task = {"kind": "dataset", "dataset_id": dataset["id"]}
        spec = spec_data(name=NAME, task=task, space={"cell_type": ["lstm", "gru"]},
                         budget={"n_trials": 16})  # fmt: skip
        assert client.post(f"{V1}/studies", json=spec).status_code == 201
        study = optuna.load_study(study_name=NAME, storage=optuna_storage(settings))
        study.add_trials(finished_trials(8, 0))
        keep_model(settings, study)
        response = client.get(f"{V1}/studies/{NAME}/export")
        assert response.status_code == 200, response.text
        return response.content


def keep_model(settings: Settings, study: optuna.Study) -> None:
    """Keep a (tiny, valid) model for the first completed trial, as a worker keeps one."""
    trial = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    content = save_tensors({"w": np.zeros(4, dtype=np.float32)})
    artifact_id = new_artifact_id()
    store_for(settings).write(artifact_id, io.BytesIO(content))
    entry = ArtifactEntry(
        id=artifact_id, study_name=NAME, trial_number=trial.number, kind="model",
        size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
        cell_type=cell_of(trial), value=trial.value, epoch=2, reevaluation=False,
    )  # fmt: skip
    SqlArtifactIndex(engine_for(settings)).add(entry)
    attach_study_artifact(study._storage, study._study_id, artifact_id, "model.safetensors")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("carried")
    return archive_of(server(f"sqlite:///{folder}/origin.db", folder))


@pytest.fixture
def target(sqlite_url: str, tmp_path: Path) -> Settings:
    return server(sqlite_url, tmp_path)


def files_of(archive: bytes) -> Files:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def packed(
    files: Files, *, manifest: bool = True, extra: Sequence[tuple[str, bytes]] = ()
) -> bytes:
    """An archive of ``files``, its MANIFEST recomputed unless ``manifest`` is False (as
    someone who changed a file without knowing of it would leave it), with ``extra``
    entries written as given."""
    files = dict(files)
    if manifest:
        stated = json.loads(files[layout.MANIFEST])
        stated["files"] = {
            n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)}
            for n, b in files.items()
            if n != layout.MANIFEST
        }
        files[layout.MANIFEST] = json.dumps(stated).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in [*files.items(), *extra]:
            zf.writestr(name, content)
    return buffer.getvalue()


def inventory(settings: Settings) -> tuple[Any, ...]:
    """Everything an import could leave behind."""
    engine = engine_for(settings)
    with session_scope(engine) as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(table))
            for table in (StudyRecord, DatasetRecord, ArtifactRecord)
        )
        studies = bulk_read.find_study_ids(session.connection(), [NAME, "again"])
    stored = sorted(p.name for p in Path(settings.artifact_dir or "").rglob("*") if p.is_file())
    return counts, studies, stored


def refused(settings: Settings, archive: bytes, error: type[Exception] = InvalidArchive) -> str:
    """The message of the refused import of ``archive``, which stored nothing."""
    before = inventory(settings)
    with pytest.raises(error) as info:
        import_study(engine=engine_for(settings), store=store_for(settings), settings=settings,
                     source=io.BytesIO(archive))  # fmt: skip
    assert inventory(settings) == before
    return str(info.value)


def changed(archive: bytes, name: str, change: Callable[[bytes], bytes]) -> Files:
    files = files_of(archive)
    files[name] = change(files[name])
    return files


def flip(content: bytes) -> bytes:
    middle = len(content) // 2
    return content[:middle] + bytes([content[middle] ^ 0xFF]) + content[middle + 1 :]


def test_the_archive_imports_and_its_data_set_is_found_again_by_its_bytes(
    archive: bytes, target: Settings
) -> None:
    engine, store = engine_for(target), store_for(target)
    first = import_study(engine=engine, store=store, settings=target, source=io.BytesIO(archive))
    assert (first.trials, first.models) == (16, 1)
    assert any("added" in note for note in first.notes)
    again = import_study(engine=engine, store=store, settings=target,
                         source=io.BytesIO(archive), name="again")  # fmt: skip
    assert again.dataset_id == first.dataset_id
    assert any("already here" in note for note in again.notes)
    with app_client(target) as client:
        models = client.get(f"{V1}/studies/again/models").json()
        assert client.get(V1 + models[0]["download"]).content[:8] != b""
        response = client.delete(f"{V1}/datasets/{first.dataset_id}")
        assert response.status_code == 409  # both studies read it


def test_a_file_changed_after_export_is_refused_by_its_checksum(
    archive: bytes, target: Settings
) -> None:
    tampered = packed(changed(archive, layout.OPTUNA, flip), manifest=False)
    assert "checksum" in refused(target, tampered)


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_a_truncated_archive_is_refused(archive: bytes, target: Settings, cut: float) -> None:
    # without its end, a zip may still show a zip inside it (the NPZ data set, stored):
    # refused too, by the names it holds
    message = refused(target, archive[: int(len(archive) * cut)])
    assert "truncated" in message or "not a file of a study archive" in message


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/cron.d/evil", "models/../../evil", "x"])
def test_a_name_outside_the_layout_is_refused(archive: bytes, target: Settings, name: str) -> None:
    message = refused(target, packed(files_of(archive), extra=[(name, b"boo")]))
    assert "not a file of a study archive" in message


def test_a_zip_bomb_is_refused_before_it_is_unpacked(archive: bytes, target: Settings) -> None:
    bomb = packed(changed(archive, layout.REPORT, lambda _: b"\0" * (8 << 20)))
    assert "zip bomb" in refused(target, bomb)
    small = target.model_copy(update={"max_import_expanded_bytes": 4096})
    assert "max_import_expanded_bytes" in refused(small, archive)
    tiny = target.model_copy(update={"max_import_bytes": 2048})
    assert "max_import_bytes" in refused(tiny, archive)


def test_an_unknown_or_missing_manifest_is_refused(archive: bytes, target: Settings) -> None:
    files = files_of(archive)
    del files[layout.MANIFEST]
    assert "no MANIFEST" in refused(target, packed(files, manifest=False))
    newer = changed(
        archive,
        layout.MANIFEST,
        lambda b: b.replace(b'"format_version": 1', b'"format_version": 9'),
    )
    assert "upgrade" in refused(target, packed(newer, manifest=False))
    files = files_of(archive)
    del files[layout.REPORT]
    assert "disagree" in refused(target, packed(files, manifest=False))


def test_a_consistent_but_false_archive_is_refused_by_its_content(
    archive: bytes, target: Settings
) -> None:
    """Checksums recomputed by whoever changed the files: the content checks still hold."""
    study = json.loads(files_of(archive)[layout.STUDY])
    study["models"][0]["trial_number"] = 3  # a pruned trial: it kept no model
    lying = changed(archive, layout.STUDY, lambda _: json.dumps(study).encode())
    assert "no such model" in refused(target, packed(lying))
    garbage = changed(archive, layout.OPTUNA, lambda b: b"SQLite format 3\0" + b"\0" * 4096)
    assert layout.OPTUNA in refused(target, packed(garbage))
    name = next(n for n in files_of(archive) if n.startswith("datasets/"))
    bad_data = changed(archive, name, lambda _: b"not,a\ndata,set\n")
    refused(target, packed(bad_data), InvalidArchive)  # its name says .npz: not what it holds
    study = json.loads(files_of(archive)[layout.STUDY])
    study["spec"]["budget"]["n_trials"] = 10**9
    too_big = changed(archive, layout.STUDY, lambda _: json.dumps(study).encode())
    refused(target, packed(too_big), Exception)  # past this server's max_trials: a 422


def test_an_invalid_data_set_is_refused_as_an_upload_is(archive: bytes, target: Settings) -> None:
    files = files_of(archive)
    name = next(n for n in files if n.startswith("datasets/"))
    junk = b"PK\x03\x04" + b"\0" * 64  # claims to be an NPZ
    sha = hashlib.sha256(junk).hexdigest()
    study = json.loads(files[layout.STUDY])
    study["datasets"][0]["sha256"] = sha
    files[layout.STUDY] = json.dumps(study).encode()
    del files[name]
    files[layout.dataset_file(sha, "npz")] = junk
    refused(target, packed(files), DatasetError)


def test_refusals_through_the_api_are_422_naming_the_file(archive: bytes, target: Settings) -> None:
    with app_client(target) as client:
        response = client.post(f"{V1}/studies/import", files={"file": ("a.zip", archive[:100])})
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail[0]["loc"] == ["body", "file"] and detail[0]["type"] == "invalid_archive"
        small = target.model_copy(update={"max_import_bytes": 1024})
        client.app.dependency_overrides[get_settings] = lambda: small  # type: ignore[attr-defined]
        body = archive + b"\0" * (70 << 10)  # past the limit and the form's room
        response = client.post(f"{V1}/studies/import", files={"file": ("a.zip", body)})
        assert response.status_code == 413


def test_unpack_never_writes_outside_its_folder(archive: bytes, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    evil = packed(files_of(archive), extra=[("../outside", b"x")])
    with pytest.raises(InvalidArchive):
        unpack(io.BytesIO(evil), folder, Settings())
    assert not (tmp_path / "outside").exists()
    assert list(folder.iterdir()) == []  # names are checked before anything is unpacked
