"""Retrying while the database is unreachable, and only then."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import create_async_engine

from services.common.db.retry import is_transient, retry_unreachable


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (OperationalError("SELECT 1", {}, OSError("connection refused")), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ValueError("bad data"), False),
    ],
    ids=["operational", "refused", "timeout", "integrity", "value"],
)
def test_what_counts_as_unreachable(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


async def test_retries_until_the_database_is_back() -> None:
    calls = 0

    async def write() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionRefusedError
        return "stored"

    assert await retry_unreachable(write, what="test", initial=0.001) == "stored"
    assert calls == 3


async def test_a_data_error_is_raised_at_once() -> None:
    calls = 0

    async def write() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("this row can never be stored")

    with pytest.raises(ValueError, match="never"):
        await retry_unreachable(write, what="test", initial=0.001)
    assert calls == 1


@pytest.mark.postgres
async def test_a_database_that_refuses_writes_is_waited_for_not_failed(pg_url: str) -> None:
    """A read-only PostgreSQL (a full disk, a replica promoted late, an operator's switch) refuses the
    write whatever the data: the message must wait for it, not go through redeliveries to the dead letters."""
    engine = create_async_engine(pg_url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SET default_transaction_read_only = on"))
            await connection.commit()
            with pytest.raises(DBAPIError) as refused:
                await connection.execute(text("CREATE TABLE refused (id int)"))
        assert is_transient(refused.value)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_refused_write_through_raw_asyncpg_is_waited_for_too(pg_url: str) -> None:
    """The results writer copies rows with asyncpg itself: its errors come unwrapped."""
    connection = await asyncpg.connect(pg_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await connection.execute("SET default_transaction_read_only = on")
        with pytest.raises(asyncpg.PostgresError) as refused:
            await connection.execute("CREATE TABLE refused (id int)")
        assert is_transient(refused.value)
        with pytest.raises(asyncpg.PostgresError) as bad_data:
            await connection.execute("SELECT 1 / 0")
        assert not is_transient(bad_data.value)
    finally:
        await connection.close()
