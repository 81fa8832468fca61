"""Async engines and sessions for PostgreSQL (asyncpg) and SQLite (aiosqlite), and migrations."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from services.common.db.sessions import Sessions
from services.common.files import private_file

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: A pooled PostgreSQL connection that sat unused longer than this (seconds) is pinged before it is
#: handed out again; one in steady use is not.
PING_IDLE_AFTER: Final = 10.0


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, ping_idle_after: float = PING_IDLE_AFTER) -> AsyncEngine:
    """An engine; on SQLite with WAL, a busy timeout and foreign keys, so readers never block the writer;
    on PostgreSQL, pooled connections idle ``ping_idle_after`` seconds are pinged before use."""
    if is_sqlite(url):
        if ":///" in url and ":memory:" not in url:
            private_file(Path(url.split(":///", 1)[1].split("?", 1)[0]))
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    ping_when_idle(engine, ping_idle_after)
    return engine


def ping_when_idle(engine: AsyncEngine, idle_after: float) -> None:
    """Ping a pooled connection before handing it out only when it has sat idle ``idle_after`` seconds.

    ``pool_pre_ping`` pinged at every checkout: a page opens three to seven sessions, so it paid as
    many extra round trips, about a fifth of a busy page's time. Connections die mostly while they sit
    idle (a database restart, an idle timeout, a firewall), and those are still pinged and replaced
    before use. One that breaks while in steady use fails its statement with a disconnect error; the
    pool then discards every connection made before the failure, so the next checkouts connect afresh
    (one failed request instead of a stale pool)."""
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _rested(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("idle_since", None)
        if since is None or time.monotonic() - since < idle_after:
            return
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure to answer means the connection is gone
            raise DisconnectionError("pooled connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("pooled connection did not answer a ping")


def make_sessionmaker(engine: AsyncEngine) -> Sessions:
    """Sessions that keep objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


def read_only(sessions: Any) -> Any:
    """Sessions on the same engine for reads that need no transaction: each statement commits on its own
    (autocommit), which saves the ``BEGIN`` and ``ROLLBACK`` round trips around every read. A page
    that reads in four sessions makes eight round trips fewer, the largest part of its time on a busy
    machine. Never write through these: a multi-statement write would not be atomic."""
    bind = getattr(sessions, "kw", {}).get("bind")
    if not isinstance(bind, AsyncEngine):
        return sessions
    return async_sessionmaker(bind.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)


def _alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Run Alembic migrations up to ``revision`` (blocking)."""
    from alembic import command

    if is_sqlite(url) and ":///" in url and ":memory:" not in url:
        private_file(Path(url.split(":///", 1)[1].split("?", 1)[0]))
    command.upgrade(_alembic_config(url), revision)


def downgrade_sync(url: str, revision: str) -> None:
    """Run Alembic migrations down to ``revision`` (blocking)."""
    from alembic import command

    command.downgrade(_alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Run migrations in a worker thread (Alembic's env drives its own event loop)."""
    await asyncio.to_thread(upgrade_sync, url, revision)
