"""check_tags (filter and bulk actions by tag) and run_sets (tag-wide runs for CI gates)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.common.db.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_tags",
        sa.Column("check_id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("check_id", "tag"),
    )
    op.create_index(op.f("ix_check_tags_tag"), "check_tags", ["tag"], unique=False)
    op.create_table(
        "run_sets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", services.common.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("run_sets")
    op.drop_index(op.f("ix_check_tags_tag"), table_name="check_tags")
    op.drop_table("check_tags")
