"""Riding out a database that is briefly unreachable (restart, failover, network) without losing work.

A consumer whose write fails for that reason keeps its message unacked and tries again with backoff,
instead of failing into redelivery — five quick redeliveries would send good messages to the
dead letters. A database that answers but refuses every write (read-only, disk full, shutting down) is
waited for the same way: the refusal says nothing about the data. Failures caused by the data itself are
raised at once: retrying cannot fix them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from services.common.metrics import DB_RETRIES, DB_UNAVAILABLE

log = logging.getLogger(__name__)
T = TypeVar("T")

#: SQLSTATEs (and classes) of a server that refuses work whatever the data: read-only transaction, the
#: connection classes, insufficient resources (disk full, out of memory, too many connections), shutting
#: down or not accepting connections yet.
_REFUSING: Final = ("25006", "08", "53", "57P01", "57P02", "57P03")


def is_transient(exc: BaseException) -> bool:
    """Whether an operation failed because the database could not be reached (worth retrying as is)."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if _sqlstate(exc).startswith(_REFUSING):
        return True
    cause = exc.__cause__ or exc.__context__
    return cause is not None and cause is not exc and isinstance(cause, OSError | ConnectionError)


async def retry_unreachable(
    operation: Callable[[], Awaitable[T]], *, what: str, initial: float = 0.2, maximum: float = 5.0
) -> T:
    """Run ``operation`` until it succeeds or fails for a reason other than an unreachable database."""
    delay = initial
    while True:
        try:
            result = await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            DB_UNAVAILABLE.labels(what).set(1)
            DB_RETRIES.labels(what).inc()
            log.warning(
                "database unavailable, retrying what=%s in=%.1fs error=%s reason=%r",
                what,
                delay,
                type(exc).__name__,
                reason_of(exc),
            )
        else:
            DB_UNAVAILABLE.labels(what).set(0)
            return result
        await asyncio.sleep(delay)
        delay = min(delay * 2, maximum)


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a database error, raised by asyncpg itself (raw COPY) or wrapped by SQLAlchemy."""
    for candidate in (exc, getattr(exc, "orig", None)):
        state = getattr(candidate, "sqlstate", None)
        if isinstance(state, str):
            return state
    return ""


def reason_of(exc: BaseException) -> str:
    """What the database said, in one short line (``cannot execute INSERT in a read-only transaction``)."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).splitlines()[0][:200] if str(orig) else type(orig).__name__
