"""The deal counter of the budget ledger: ``dealt``.

Every deal at or past ``dealt`` was never handed out and no trial holds it, so a claim
that makes a new trial takes the next deal from the counter in one statement, whatever
was given back before (see ``cellsearch.search.worker.deals``). A study made before
this revision has no counter (NULL): while it was never given a unit back its next
claim sets it; otherwise its deals are picked by reading its trials, as before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("dealt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_column("dealt")
