"""A study has one name: drop ``optuna_study_name`` (it always equalled ``name``).

The service's study and its Optuna study share the name; the column only let routes and
the worker use different spellings of the same fact.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.drop_column("optuna_study_name")


def downgrade() -> None:
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.add_column(sa.Column("optuna_study_name", sa.String(512), nullable=True))
    op.execute("UPDATE cellsearch_studies SET optuna_study_name = name")
    with op.batch_alter_table("cellsearch_studies") as batch:
        batch.alter_column("optuna_study_name", nullable=False)
