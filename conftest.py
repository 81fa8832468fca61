"""Fixtures every test can use: fresh PostgreSQL databases, RabbitMQ vhosts and SQLite files.

Real services only: PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672 (``.ci/run`` starts
them). Each test that asks gets its own database or vhost, dropped afterwards, so tests never see
each other's rows or queues.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SEYMOUR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBIT_HOST = os.environ.get("SEYMOUR_TEST_RABBIT", "127.0.0.1:5672")

# The in-process bus hands consumers the published object; under test it decodes every message as a
# broker's consumer would and reports any published object that differs from its wire form (below), so
# the tests see what RabbitMQ would deliver. Processes the tests start inherit it.
os.environ.setdefault("SEYMOUR_MEMORY_BUS_CHECKED", "1")


@pytest.fixture(autouse=True)
def _wire_faithful_messages() -> Iterator[None]:
    """Fail a test whose in-process messages would reach a RabbitMQ consumer as something else."""
    from services.common.bus.memory import DIVERGED

    before = len(DIVERGED)
    yield
    assert DIVERGED[before:] == [], f"published messages differ from their wire form: {DIVERGED[before:]}"


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (asyncpg URL), dropped after the test."""
    from services.common.db.engine import upgrade_sync

    name = f"seymour_t_{uuid.uuid4().hex[:10]}"
    _psql(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade_sync(url)
        yield url
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url_empty() -> Iterator[str]:
    """A fresh PostgreSQL database with no schema (for migration tests)."""
    name = f"seymour_t_{uuid.uuid4().hex[:10]}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated to head, made once per session: migrating costs ~0.1 s of CPU but ~1 s
    of fsyncs (one commit per migration), paid by every test that wants a database."""
    from services.common.db.engine import upgrade_sync

    path = tmp_path_factory.mktemp("migrated") / "seymour.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _migrated_sqlite: Path) -> str:
    """A fresh, migrated SQLite file: a copy of the session's migrated one."""
    path = tmp_path / "seymour.db"
    shutil.copy(_migrated_sqlite, path)
    return f"sqlite+aiosqlite:///{path}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def rabbit_url() -> Iterator[str]:
    """A fresh RabbitMQ vhost on the local broker (guest/guest), deleted after the test."""
    vhost = f"seymour-t-{uuid.uuid4().hex[:10]}"
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@{RABBIT_HOST}/{vhost}"
    finally:
        _rabbitmqctl("delete_vhost", vhost)
