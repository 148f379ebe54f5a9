"""A reclaim counter on the budget ledger, so that a release cannot free a unit twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("reclaims", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_column("reclaims")
