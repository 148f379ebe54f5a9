"""Artifacts: checkpoints of running trials and kept models, recorded beside the store.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cellsearch_artifacts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=True),
        sa.Column("study_name", sa.String(length=64), nullable=False),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cell_type", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("reevaluation", sa.Boolean(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"],
            ["cellsearch_studies.id"],
            name=op.f("fk_cellsearch_artifacts_study_id_cellsearch_studies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cellsearch_artifacts")),
    )
    with op.batch_alter_table("cellsearch_artifacts") as batch:
        batch.create_index(batch.f("ix_cellsearch_artifacts_study_id"), ["study_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_artifacts") as batch:
        batch.drop_index(batch.f("ix_cellsearch_artifacts_study_id"))
    op.drop_table("cellsearch_artifacts")
