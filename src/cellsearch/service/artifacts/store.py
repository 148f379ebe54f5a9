"""The artifact store, built from the settings: a directory or an S3-compatible bucket.

Both are Optuna's own stores (``optuna.artifacts``), so optuna-dashboard opened on the
same store shows the kept models. Artifact ids are UUIDs in Optuna's form (it makes the
ids of what ``upload_artifact`` stores), checked before they reach a store, so that no id
names a path of its own.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from cellsearch.service.artifacts.settings import ArtifactSettings
from cellsearch.service.errors import NotFound

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def new_artifact_id() -> str:
    """A fresh artifact id, in Optuna's form (a UUID with its dashes)."""
    return str(uuid.uuid4())


def checked_id(artifact_id: str) -> str:
    """``artifact_id`` when it is one of ours (never a path).

    Raises:
        NotFound: it is not.
    """
    if not _ID.match(artifact_id):
        raise NotFound(f"no artifact {artifact_id!r}")
    return artifact_id


def artifact_dir(settings: ArtifactSettings, database_url: str) -> Path:
    """The store's directory: the setting, else beside a SQLite file, else in the working
    directory."""
    if settings.artifact_dir:
        return Path(settings.artifact_dir)
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(f"{url.database}.artifacts")
    return Path("cellsearch-artifacts")


def artifact_location(settings: ArtifactSettings, database_url: str) -> str:
    """Where artifacts are kept, in words fit to show (never credentials)."""
    if settings.artifact_url:
        return settings.artifact_url
    return str(artifact_dir(settings, database_url).resolve())


def artifact_store(settings: ArtifactSettings, database_url: str) -> Any:
    """The artifact store of these settings (created if it is a directory).

    Raises:
        RuntimeError: an S3 store without boto3 installed (the message names the extra).
    """
    if settings.artifact_url:
        try:
            import boto3
        except ImportError:
            raise RuntimeError(
                "CELLSEARCH_ARTIFACT_URL names an S3 bucket: pip install 'cellsearch[s3]'"
            ) from None
        from optuna.artifacts import Boto3ArtifactStore

        bucket, _, prefix = settings.artifact_url.removeprefix("s3://").partition("/")
        return _Prefixed(Boto3ArtifactStore(bucket, client=boto3.client("s3")), prefix)
    from optuna.artifacts import FileSystemArtifactStore

    base = artifact_dir(settings, database_url)
    base.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(base)


class _Prefixed:
    """A store whose artifact ids live under a key prefix (an S3 bucket shared with other
    data)."""

    def __init__(self, store: Any, prefix: str) -> None:
        self._store = store
        self._prefix = prefix.strip("/")

    def _key(self, artifact_id: str) -> str:
        return f"{self._prefix}/{artifact_id}" if self._prefix else artifact_id

    def open_reader(self, artifact_id: str) -> Any:
        return self._store.open_reader(self._key(artifact_id))

    def write(self, artifact_id: str, content_body: Any) -> None:
        self._store.write(self._key(artifact_id), content_body)

    def remove(self, artifact_id: str) -> None:
        self._store.remove(self._key(artifact_id))
