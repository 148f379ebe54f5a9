"""The artifact store's settings (read as part of :class:`cellsearch.service.settings.Settings`)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ArtifactSettings(BaseModel):
    """Where trained models and checkpoints are kept, and how many.

    ``CELLSEARCH_ARTIFACT_DIR`` names a directory every API and worker process can reach (a
    shared volume on a cluster); unset, it is the SQLite database's file name with
    ``.artifacts`` appended (``cellsearch.db.artifacts`` for ``make run``), or
    ``cellsearch-artifacts`` in the working directory for another database.
    ``CELLSEARCH_ARTIFACT_URL=s3://bucket/prefix`` keeps them in an S3-compatible bucket
    instead (``pip install 'cellsearch[s3]'``; credentials and the endpoint come from
    boto3's own environment: ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``...).
    """

    artifact_dir: str | None = Field(
        default=None, description="Directory of the artifact store (see above)."
    )
    artifact_url: str | None = Field(
        default=None,
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$",
        description="s3://bucket[/prefix]: keep artifacts in an S3-compatible bucket.",
    )
    checkpoint_every_s: float = Field(
        default=30.0,
        ge=0,
        description="Seconds of training a running trial may leave unsaved: a checkpoint is "
        "written at the end of an epoch when waiting another would leave more (0: every "
        "epoch); a requeued copy resumes from the last one.",
    )
    keep_top_k: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Completed trials per cell type whose best-epoch weights are kept (and "
        "every seed re-evaluation run's); 0 keeps none.",
    )
    max_artifact_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description="Bytes of artifacts one study may hold; a model that would pass it is "
        "not kept, and its trial says why.",
    )
