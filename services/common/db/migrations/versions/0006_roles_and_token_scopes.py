"""users.role (admin, editor, viewer) replaces users.is_admin; api_tokens.scope (full, run)

Existing admins stay admins and every other user becomes an editor (what they could do before);
existing tokens keep full scope. Going down cannot express either, so it removes run-only tokens and the
viewers' tokens and sessions rather than widen them (viewers can log in again, as plain users).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("role", sa.String(length=10), server_default="editor", nullable=False))
    op.execute(sa.text("UPDATE users SET role = 'admin' WHERE is_admin"))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=10), server_default="full", nullable=False))


def downgrade() -> None:
    viewers = "SELECT id FROM users WHERE role = 'viewer'"
    op.execute(sa.text(f"DELETE FROM api_tokens WHERE scope = 'run' OR user_id IN ({viewers})"))
    op.execute(sa.text(f"DELETE FROM web_sessions WHERE user_id IN ({viewers})"))
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute(sa.text("UPDATE users SET is_admin = (role = 'admin')"))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("role")
