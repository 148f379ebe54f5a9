"""Seed re-evaluation on the budget ledger: its units, and a monotonic claim counter.

``reevaluations`` holds the re-evaluation units added to the budget once the search is
done (0 before, or for a study that does not re-evaluate); ``reevaluation_base`` is the
value of ``issued`` at that moment (NULL during the search); ``issued`` counts every claim
ever made (never decremented), so each re-evaluation claim gets a unique ticket.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("issued", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column("reevaluations", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("reevaluation_base", sa.Integer(), nullable=True))
    op.execute("UPDATE cellsearch_studies SET issued = claimed")


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_column("reevaluation_base")
        batch.drop_column("reevaluations")
        batch.drop_column("issued")
