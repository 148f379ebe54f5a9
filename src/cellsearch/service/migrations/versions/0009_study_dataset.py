"""A study's uploaded data set, referenced by the database: deleting a data set that a
study reads is refused by the database itself, whatever the interleaving of the two.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("dataset_id", sa.String(length=32), nullable=True))
        batch.create_index(
            batch.f("ix_cellsearch_studies_dataset_id"), ["dataset_id"], unique=False
        )
        batch.create_foreign_key(
            batch.f("fk_cellsearch_studies_dataset_id_cellsearch_datasets"),
            "cellsearch_datasets",
            ["dataset_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    _link_existing_studies()


def _link_existing_studies() -> None:
    """Fill the reference from each stored spec (a study reads at most one data set)."""
    conn = op.get_bind()
    studies = sa.table(
        "cellsearch_studies",
        sa.column("id", sa.Integer),
        sa.column("spec", sa.JSON),
        sa.column("dataset_id", sa.String),
    )
    known = set(conn.scalars(sa.text("SELECT id FROM cellsearch_datasets")))
    for study_id, spec in conn.execute(sa.select(studies.c.id, studies.c.spec)).all():
        task = (json.loads(spec) if isinstance(spec, str) else spec or {}).get("task") or {}
        dataset_id = task.get("dataset_id") if task.get("kind") == "dataset" else None
        if dataset_id in known:
            conn.execute(
                studies.update().where(studies.c.id == study_id).values(dataset_id=dataset_id)
            )


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_constraint(
            batch.f("fk_cellsearch_studies_dataset_id_cellsearch_datasets"), type_="foreignkey"
        )
        batch.drop_index(batch.f("ix_cellsearch_studies_dataset_id"))
        batch.drop_column("dataset_id")
