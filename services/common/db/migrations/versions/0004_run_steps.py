"""runs.steps / failed_step / certificate: per-step outcomes of multi-step checks, the TLS certificate seen

Revision ID: run_steps
Revises: 0003
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "run_steps"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("steps", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("failed_step", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("certificate", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("certificate")
        batch.drop_column("failed_step")
        batch.drop_column("steps")
