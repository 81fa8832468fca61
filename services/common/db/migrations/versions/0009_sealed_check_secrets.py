"""Seal secret request headers and alert channel secrets stored in clear in ``checks.spec``

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 04:30:00

Upgrade seals every secret header value and channel secret of every check with the deployment key
(``SEYMOUR_SECRET_KEY``, else ``<data_dir>/secret.key``: run it with the home services' settings);
downgrade opens them again (it needs the same key). A database with nothing to seal needs no key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from services.common.sealing import open_spec, seal_spec
from services.common.secretbox import LazyBox
from services.common.settings import Settings

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_CHECKS = sa.table("checks", sa.column("id", sa.Uuid()), sa.column("spec", sa.JSON()))


def _rewrite(change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    bind = op.get_bind()
    for check_id, spec in bind.execute(sa.select(_CHECKS.c.id, _CHECKS.c.spec)).all():
        changed = change(spec)
        if changed != spec:
            bind.execute(_CHECKS.update().where(_CHECKS.c.id == check_id).values(spec=changed))


def upgrade() -> None:
    box = LazyBox(Settings())
    _rewrite(lambda spec: seal_spec(spec, box))


def downgrade() -> None:
    box = LazyBox(Settings())
    _rewrite(lambda spec: open_spec(spec, box))
