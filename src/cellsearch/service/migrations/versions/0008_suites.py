"""Suites: a table of suites (with the key that made each), and a link from each study
to the suite that made it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cellsearch_suites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("studies", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cellsearch_suites")),
        sa.UniqueConstraint("name", name=op.f("uq_cellsearch_suites_name")),
    )
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("suite_id", sa.Integer(), nullable=True))
        batch.create_index(batch.f("ix_cellsearch_studies_suite_id"), ["suite_id"], unique=False)
        batch.create_foreign_key(
            batch.f("fk_cellsearch_studies_suite_id_cellsearch_suites"),
            "cellsearch_suites",
            ["suite_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_constraint(
            batch.f("fk_cellsearch_studies_suite_id_cellsearch_suites"), type_="foreignkey"
        )
        batch.drop_index(batch.f("ix_cellsearch_studies_suite_id"))
        batch.drop_column("suite_id")
    op.drop_table("cellsearch_suites")
