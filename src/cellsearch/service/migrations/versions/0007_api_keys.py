"""API keys with roles, the server's generated secrets, and who created each study and
data set.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cellsearch_api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cellsearch_api_keys")),
        sa.UniqueConstraint("name", name=op.f("uq_cellsearch_api_keys_name")),
        sa.UniqueConstraint("digest", name=op.f("uq_cellsearch_api_keys_digest")),
    )
    op.create_index(
        op.f("ix_cellsearch_api_keys_prefix"), "cellsearch_api_keys", ["prefix"], unique=False
    )
    op.create_table(
        "cellsearch_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cellsearch_secrets")),
    )
    for table in ("cellsearch_studies", "cellsearch_datasets"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("created_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("cellsearch_datasets", "cellsearch_studies"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("created_by")
    op.drop_table("cellsearch_secrets")
    op.drop_index(op.f("ix_cellsearch_api_keys_prefix"), table_name="cellsearch_api_keys")
    op.drop_table("cellsearch_api_keys")
