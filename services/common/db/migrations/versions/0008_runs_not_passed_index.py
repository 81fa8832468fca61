"""ix_runs_check_not_passed: a check's runs that did not pass, newest first, without walking its passes

Revision ID: 0008
Revises: status_pages
Create Date: 2026-12-01 04:10:00

The runs page's "failed only" filter walked ``ix_runs_check_completed`` and fetched every run of the
check to test its status: with 2 % failures, fifty failed runs cost about 2,500 row reads, and a deep
page more. A partial index holds only the runs that did not pass. On PostgreSQL it is built
``CONCURRENTLY`` (outside the migration's transaction), so the results writer keeps inserting runs
while a large table is indexed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "status_pages"
branch_labels = None
depends_on = None

NAME = "ix_runs_check_not_passed"
WHERE = sa.text("status <> 'passed'")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.create_index(
                NAME,
                "runs",
                ["check_id", "completed_at"],
                postgresql_where=WHERE,
                postgresql_concurrently=True,
                if_not_exists=True,
            )
        return
    op.create_index(NAME, "runs", ["check_id", "completed_at"], sqlite_where=WHERE)


def downgrade() -> None:
    op.drop_index(NAME, table_name="runs")
