"""status_pages, status_notices and check_badges: public status pages and README badges

Revision ID: status_pages
Revises: 0006
Create Date: 2026-12-01 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import services.common.db.models

revision = "status_pages"
down_revision = "0006"
branch_labels = None
depends_on = None

UTC = services.common.db.models.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "status_pages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("logo_text", sa.String(length=60), nullable=True),
        sa.Column("logo_colour", sa.String(length=7), nullable=True),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.Column("updated_at", UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "status_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("page_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("starts_at", UTC(timezone=True), nullable=True),
        sa.Column("ends_at", UTC(timezone=True), nullable=True),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["page_id"], ["status_pages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_status_notices_page_created", "status_notices", ["page_id", "created_at"], unique=False
    )
    op.create_table(
        "check_badges",
        sa.Column("check_id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["check_id"], ["checks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("check_id"),
        sa.UniqueConstraint("token"),
    )


def downgrade() -> None:
    op.drop_table("check_badges")
    op.drop_index("ix_status_notices_page_created", table_name="status_notices")
    op.drop_table("status_notices")
    op.drop_table("status_pages")
