"""Pooled PostgreSQL connections: pinged only after sitting idle, and a dead one never reaches a caller
twice."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from services.common.db.engine import make_engine, make_sessionmaker


async def _backend_pid(sessions: object) -> int:
    async with sessions() as session:  # type: ignore[operator]
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(pg_url: str, pid: int) -> None:
    admin = make_engine(pg_url)
    try:
        async with admin.connect() as conn:
            assert (await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})).scalar_one()
    finally:
        await admin.dispose()


async def test_an_idle_connection_that_died_is_replaced_before_use(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=1, ping_idle_after=0.0)  # back in the pool = idle
    sessions = make_sessionmaker(engine)
    try:
        first = await _backend_pid(sessions)
        await _terminate(pg_url, first)
        assert await _backend_pid(sessions) != first
    finally:
        await engine.dispose()


async def test_a_busy_connection_is_not_pinged(pg_url: str) -> None:
    """Checked out again at once, a connection goes straight to its statement: the statement count the
    server saw grows by exactly the statements sent, no ping between them."""
    engine = make_engine(pg_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    pings: list[str] = []
    try:
        await _backend_pid(sessions)
        raw = engine.sync_engine.dialect

        original = raw.do_ping

        def counted(dbapi_connection: object) -> bool:
            pings.append("ping")
            return bool(original(dbapi_connection))

        raw.do_ping = counted  # type: ignore[method-assign]
        for _ in range(5):
            await _backend_pid(sessions)
        assert pings == []
    finally:
        await engine.dispose()


async def test_a_connection_killed_in_use_fails_once_then_the_pool_recovers(pg_url: str) -> None:
    engine = make_engine(pg_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    try:
        pid = await _backend_pid(sessions)
        await _terminate(pg_url, pid)
        with pytest.raises(DBAPIError) as failed:
            await _backend_pid(sessions)
        assert failed.value.connection_invalidated
        assert await _backend_pid(sessions) != pid
    finally:
        await engine.dispose()
