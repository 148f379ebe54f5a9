"""Kept models as a study's artifacts, the way optuna-dashboard lists them.

``optuna.artifacts.upload_artifact`` writes a file to the store and its metadata
(``ArtifactMeta``) as a study system attribute ``artifacts:<id>``; optuna-dashboard lists
those on the study's page. A model the retention later drops must leave the list too;
Optuna has no call to delete an attribute, so the attribute is set to JSON ``null``, as
optuna-dashboard's own delete does, and :func:`study_artifacts` (unlike Optuna's
``get_all_artifact_meta``) skips such entries. The file is written and removed by the
caller; here only the metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import optuna
from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX, ArtifactMeta

MODEL_MIMETYPE = "application/octet-stream"


def _meta_json(artifact_id: str, filename: str) -> str:
    meta = ArtifactMeta(
        artifact_id=artifact_id, filename=filename, mimetype=MODEL_MIMETYPE, encoding=None
    )
    return json.dumps(asdict(meta))


def attach_study_artifact(
    storage: optuna.storages.BaseStorage, study_id: int, artifact_id: str, filename: str
) -> None:
    """List the stored file ``artifact_id`` among the study's artifacts as ``filename``."""
    key = ARTIFACTS_ATTR_PREFIX + artifact_id
    storage.set_study_system_attr(study_id, key, _meta_json(artifact_id, filename))


def forget_study_artifact(
    storage: optuna.storages.BaseStorage, study_id: int, artifact_id: str
) -> None:
    """Take ``artifact_id`` off the study's list of artifacts (its file is removed apart)."""
    storage.set_study_system_attr(study_id, ARTIFACTS_ATTR_PREFIX + artifact_id, json.dumps(None))


def study_artifacts(storage: optuna.storages.BaseStorage, study_id: int) -> dict[str, str]:
    """The study's listed artifacts: id -> file name (entries taken off the list skipped)."""
    return listed_artifacts(storage.get_study_system_attrs(study_id))


def listed_artifacts(system_attrs: Mapping[str, Any]) -> dict[str, str]:
    """The artifacts a study's system attributes list: id -> file name (entries taken off
    the list skipped)."""
    listed: dict[str, str] = {}
    for key, value in system_attrs.items():
        if not key.startswith(ARTIFACTS_ATTR_PREFIX):
            continue
        meta = json.loads(value) if isinstance(value, str) else value
        if meta:
            listed[meta["artifact_id"]] = meta["filename"]
    return listed


def relisted_artifacts(
    system_attrs: Mapping[str, Any], listed: Mapping[str, str]
) -> dict[str, Any]:
    """A study's system attributes with its list of artifacts replaced by ``listed`` (id ->
    file name), in the form :func:`attach_study_artifact` writes: what a copy of the study
    whose artifacts have new ids (or fewer of them) lists."""
    kept = {k: v for k, v in system_attrs.items() if not k.startswith(ARTIFACTS_ATTR_PREFIX)}
    for artifact_id, filename in listed.items():
        kept[ARTIFACTS_ATTR_PREFIX + artifact_id] = _meta_json(artifact_id, filename)
    return kept
