"""runs.stored_at: when the results writer committed a run (schedule→stored lag, exactly)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:52:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.common.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("stored_at", services.common.db.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("stored_at")
