"""Leader election: only one scheduler fires slots, and each new leader gets a higher fencing epoch.

On PostgreSQL the leader holds ``pg_try_advisory_lock`` on a dedicated asyncpg connection outside any pool
(a pool releases advisory locks when a connection goes back). The lock lives as long as that session:

- the leader dies (kill -9, crash, host gone): its socket closes, the lock is released, a standby that
  polls every second takes over;
- the leader freezes (SIGSTOP, swap storm): its socket stays open, so the session carries
  ``idle_session_timeout``; the leader's watchdog runs ``SELECT 1`` every second, so only a frozen leader
  goes idle long enough for PostgreSQL to end its session and release the lock.

The leader treats itself as leader only while its last successful ``SELECT 1`` is younger than ``lease``
(shorter than the idle timeout), so a leader waking from a freeze stops firing before it even learns it
was deposed. Its stray messages, if any, carry an older epoch that
:class:`~services.common.fencing.EpochFence` rejects: the epoch is bumped in ``scheduler_lease``
*on the lock connection*, so only a holder can bump it.

On SQLite (embedded mode, one process) this process is trivially the leader; it still bumps the epoch.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from contracts.v1.base import utcnow
from services.common.db.engine import is_sqlite
from services.common.db.models import SchedulerLease
from services.common.db.sessions import Sessions
from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_NAME: Final = "scheduler"
#: The advisory lock key: a stable signed 64-bit number derived from a name, the same in every process.
ADVISORY_KEY: Final = int.from_bytes(
    hashlib.sha256(b"seymour.scheduler.leader").digest()[:8], "big", signed=True
)

POLL_INTERVAL: Final = 1.0
PING_INTERVAL: Final = 1.0
#: A leader stops firing when its last confirmed ping is older than this (must be < IDLE_SESSION_TIMEOUT).
LEASE: Final = 3.0
#: PostgreSQL ends a lock session idle this long, releasing the lock of a frozen leader.
IDLE_SESSION_TIMEOUT: Final = 6.0
QUERY_TIMEOUT: Final = 2.0

_BUMP_EPOCH: Final = f"""
INSERT INTO {SchedulerLease.__tablename__} (name, epoch, holder, acquired_at)
VALUES ($1, 1, $2, $3)
ON CONFLICT (name) DO UPDATE
SET epoch = {SchedulerLease.__tablename__}.epoch + 1,
    holder = EXCLUDED.holder,
    acquired_at = EXCLUDED.acquired_at
RETURNING epoch
"""


class LeaderLock(Protocol):
    """The lock behind the election."""

    async def try_acquire(self, holder: str) -> int | None:
        """Take the lock if free and return the new (bumped) epoch; ``None`` if someone else holds it."""
        ...

    async def alive(self) -> bool:
        """Whether the lock is still held (the lock session answers)."""
        ...

    async def release(self) -> None:
        """Give the lock up (idempotent)."""
        ...


def asyncpg_dsn(url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from a SQLAlchemy URL such as ``postgresql+asyncpg://``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AdvisoryLock:
    """``pg_try_advisory_lock`` on a dedicated connection that ends itself when its holder freezes."""

    def __init__(
        self,
        dsn: str,
        *,
        key: int = ADVISORY_KEY,
        idle_session_timeout: float = IDLE_SESSION_TIMEOUT,
        query_timeout: float = QUERY_TIMEOUT,
    ) -> None:
        self._dsn = dsn
        self._key = key
        self._idle_ms = int(idle_session_timeout * 1000)
        self._timeout = query_timeout
        self._conn: asyncpg.Connection | None = None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=self._timeout,
                server_settings={
                    "idle_session_timeout": str(self._idle_ms),
                    "application_name": "seymour-scheduler-lock",
                },
            )
        return self._conn

    async def try_acquire(self, holder: str) -> int | None:
        """Try the lock; when taken, bump ``scheduler_lease.epoch`` on the same connection."""
        conn = await self._connection()
        taken = await asyncio.wait_for(
            conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key), self._timeout
        )
        if not taken:
            return None
        try:
            async with conn.transaction():
                epoch = await asyncio.wait_for(
                    conn.fetchval(_BUMP_EPOCH, LEASE_NAME, holder[:200], utcnow()), self._timeout
                )
        except BaseException:
            await self.release()
            raise
        return int(epoch)

    async def alive(self) -> bool:
        """``SELECT 1`` on the lock connection within the query timeout."""
        conn = self._conn
        if conn is None or conn.is_closed():
            return False
        try:
            return bool(await asyncio.wait_for(conn.fetchval("SELECT 1"), self._timeout) == 1)
        except Exception as exc:
            # Whatever the failure (closed by the server, timed out, a query cut short by a freeze and left
            # half-done), the session can no longer vouch for the lock.
            log.warning("leader lock connection failed error=%s", type(exc).__name__)
            return False

    async def release(self) -> None:
        """Close the lock connection: PostgreSQL releases session locks with the session."""
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.wait_for(conn.close(), self._timeout)
        except Exception:
            conn.terminate()


class ProcessLock:
    """Embedded mode (SQLite, one process): always acquired; the epoch is still bumped in the table."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def try_acquire(self, holder: str) -> int | None:
        """Bump and return the epoch."""
        async with self._sessions.begin() as session:
            lease = await session.get(SchedulerLease, LEASE_NAME)
            if lease is None:
                lease = SchedulerLease(name=LEASE_NAME, epoch=1, holder=holder[:200], acquired_at=utcnow())
                session.add(lease)
            else:
                lease.epoch += 1
                lease.holder = holder[:200]
                lease.acquired_at = utcnow()
            epoch = int(lease.epoch)
        return epoch

    async def alive(self) -> bool:
        """Always: nothing else can take the lock."""
        return True

    async def release(self) -> None:
        """Nothing to release."""


def make_lock(database_url: str, sessions: Sessions) -> LeaderLock:
    """The lock for this database: an advisory lock on PostgreSQL, this process on SQLite."""
    if is_sqlite(database_url):
        return ProcessLock(sessions)
    return AdvisoryLock(asyncpg_dsn(database_url))


ElectedListener = Callable[[int], Awaitable[None]]


class LeaderElector:
    """Campaigns for the lock while standby, watches it while leader. A :class:`Lifecycle`."""

    def __init__(
        self,
        lock: LeaderLock,
        holder: str,
        *,
        poll_interval: float = POLL_INTERVAL,
        ping_interval: float = PING_INTERVAL,
        lease: float = LEASE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = lock
        self.holder = holder
        self._poll_interval = poll_interval
        self._ping_interval = ping_interval
        self._lease = lease
        self._clock = clock
        self._leader = False
        self._epoch = 0
        self._confirmed_at = 0.0
        self._listeners: list[ElectedListener] = []
        self._task: asyncio.Task[None] | None = None

    def on_elected(self, listener: ElectedListener) -> None:
        """Call ``listener(epoch)`` each time this process becomes leader."""
        self._listeners.append(listener)

    @property
    def epoch(self) -> int:
        """The epoch of this process's current (or last) leadership; 0 if it never led."""
        return self._epoch

    def is_leader(self) -> bool:
        """Leader, and the lock was confirmed within the lease: the check made before every firing."""
        return self._leader and self._clock() - self._confirmed_at < self._lease

    async def start(self) -> None:
        """Campaign once now (so a lone process leads as soon as it has started), then keep at it."""
        await self.step()
        self._task = asyncio.create_task(self._run(), name="scheduler-leader-elector")

    async def stop(self) -> None:
        """Stop campaigning and give the lock up, so a standby takes over at its next poll."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._leader:
            log.info("scheduler leadership released holder=%s epoch=%d", self.holder, self._epoch)
        self._leader = False
        await self._lock.release()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._ping_interval if self._leader else self._poll_interval)
            try:
                await self.step()
            except Exception:
                log.exception("leader election round failed holder=%s", self.holder)

    async def step(self) -> None:
        """One round: confirm the lock if leader, else try to take it."""
        if self._leader:
            await self._confirm()
        else:
            await self._campaign()

    async def _campaign(self) -> None:
        try:
            epoch = await self._lock.try_acquire(self.holder)
        except Exception as exc:
            log.warning("leader lock unavailable holder=%s error=%s", self.holder, type(exc).__name__)
            await self._lock.release()
            return
        if epoch is None:
            return
        self._epoch = epoch
        self._confirmed_at = self._clock()
        self._leader = True
        log.info("became scheduler leader holder=%s epoch=%d", self.holder, epoch)
        for listener in self._listeners:
            try:
                await listener(epoch)
            except Exception:
                log.exception("leader listener failed holder=%s epoch=%d", self.holder, epoch)

    async def _confirm(self) -> None:
        try:
            alive = await self._lock.alive()
        except Exception:
            log.exception("leader lock check failed holder=%s", self.holder)
            alive = False
        if alive:
            self._confirmed_at = self._clock()
            return
        self._leader = False
        log.warning("lost scheduler leadership holder=%s epoch=%d", self.holder, self._epoch)
        await self._lock.release()
