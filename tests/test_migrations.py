"""Migrations: up, down and up again on SQLite and PostgreSQL, and the models never drift from them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db.engine import downgrade_sync, upgrade_sync
from services.common.db.models import Base


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url_empty"))


async def _inspect(url: str, fn: Any) -> Any:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(fn)
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade_leaves_the_schema_the_models_describe(empty_url: str) -> None:
    upgrade_sync(empty_url)
    tables = asyncio.run(_inspect(empty_url, lambda c: set(inspect(c).get_table_names())))
    assert set(Base.metadata.tables) <= tables
    downgrade_sync(empty_url, "base")
    left = asyncio.run(_inspect(empty_url, lambda c: set(inspect(c).get_table_names())))
    assert left <= {"alembic_version"}
    upgrade_sync(empty_url)
    upgrade_sync(empty_url)  # idempotent

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    assert asyncio.run(_inspect(empty_url, diff)) == []
