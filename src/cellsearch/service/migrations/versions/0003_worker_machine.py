"""Workers record their machine and torch thread count (CPU sharing between workers).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_workers") as batch:
        batch.add_column(sa.Column("machine", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("torch_threads", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_workers") as batch:
        batch.drop_column("torch_threads")
        batch.drop_column("machine")
