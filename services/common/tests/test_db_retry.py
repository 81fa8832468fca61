"""Retrying while the database is unreachable, and only then."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

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
