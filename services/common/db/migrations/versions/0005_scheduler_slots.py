"""scheduler_slots: the last slot each check's leader dealt with, so slots with no leader become missed

Revision ID: 0005
Revises: run_steps
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.common.db.models

revision = "0005"
down_revision = "run_steps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_slots",
        sa.Column("check_id", sa.Uuid(), nullable=False),
        sa.Column("last_slot", services.common.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("check_id"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_slots")
