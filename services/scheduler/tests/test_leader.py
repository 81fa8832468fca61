"""Leader election: one leader, a fresh epoch per leadership, and a frozen leader stops firing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import SchedulerLease
from services.scheduler.leader import AdvisoryLock, LeaderElector, ProcessLock, asyncpg_dsn
from tests.support.waiting import took


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLock:
    """A lock another process may hold; its session may die."""

    def __init__(self) -> None:
        self.held_elsewhere = False
        self.session_alive = True
        self.broken = False
        self.epoch = 0
        self.releases = 0

    async def try_acquire(self, holder: str) -> int | None:
        if self.broken:
            raise ConnectionRefusedError("database down")
        if self.held_elsewhere:
            return None
        self.epoch += 1
        self.session_alive = True
        return self.epoch

    async def alive(self) -> bool:
        return self.session_alive

    async def release(self) -> None:
        self.releases += 1


def elector(lock: FakeLock, clock: FakeClock) -> tuple[LeaderElector, list[int]]:
    elected: list[int] = []
    candidate = LeaderElector(lock, "me", lease=3.0, clock=clock)

    async def listener(epoch: int) -> None:
        elected.append(epoch)

    candidate.on_elected(listener)
    return candidate, elected


async def test_takes_a_free_lock_with_a_new_epoch() -> None:
    lock, clock = FakeLock(), FakeClock()
    candidate, elected = elector(lock, clock)
    await candidate.step()
    assert candidate.is_leader()
    assert candidate.epoch == 1
    assert elected == [1]


@pytest.mark.parametrize(
    ("held_elsewhere", "broken"), [(True, False), (False, True)], ids=["held-by-another", "database-down"]
)
async def test_stays_standby_when_it_cannot_take_the_lock(held_elsewhere: bool, broken: bool) -> None:
    lock, clock = FakeLock(), FakeClock()
    lock.held_elsewhere, lock.broken = held_elsewhere, broken
    candidate, elected = elector(lock, clock)
    await candidate.step()
    assert not candidate.is_leader()
    assert elected == []


async def test_a_leader_whose_lock_session_died_steps_down_and_later_leads_with_a_higher_epoch() -> None:
    lock, clock = FakeLock(), FakeClock()
    candidate, elected = elector(lock, clock)
    await candidate.step()
    lock.session_alive = False
    await candidate.step()
    assert not candidate.is_leader()
    assert lock.releases == 1
    await candidate.step()
    assert candidate.is_leader()
    assert elected == [1, 2]


async def test_a_frozen_leader_stops_firing_once_its_lease_is_unconfirmed() -> None:
    # SIGSTOP in miniature: time passes (the monotonic clock keeps counting) with no confirming ping.
    lock, clock = FakeLock(), FakeClock()
    candidate, _ = elector(lock, clock)
    await candidate.step()
    clock.now += 2.9
    assert candidate.is_leader()
    clock.now += 0.2
    assert not candidate.is_leader(), "no firing on wake-up before the lock is confirmed again"
    await candidate.step()
    assert candidate.is_leader(), "a confirmed lock renews the lease"


async def test_stop_releases_the_lock() -> None:
    lock, clock = FakeLock(), FakeClock()
    candidate, _ = elector(lock, clock)
    await candidate.start()
    assert candidate.is_leader()
    await candidate.stop()
    assert not candidate.is_leader()
    assert lock.releases == 1


async def test_sqlite_process_lock_bumps_the_epoch_each_time(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    try:
        epochs = [await ProcessLock(sessions).try_acquire(f"p{n}") for n in range(3)]
        async with sessions() as session:
            lease = (await session.execute(select(SchedulerLease))).scalar_one()
        assert epochs == [1, 2, 3]
        assert (lease.name, lease.epoch, lease.holder) == ("scheduler", 3, "p2")
    finally:
        await engine.dispose()


async def _wait_for(condition: Any, deadline_s: float) -> float:
    return await took(condition, within=deadline_s)


@pytest.mark.postgres
async def test_advisory_lock_admits_one_holder_and_passes_on_when_it_closes(pg_url: str) -> None:
    first, second = AdvisoryLock(asyncpg_dsn(pg_url)), AdvisoryLock(asyncpg_dsn(pg_url))
    try:
        assert await first.try_acquire("first") == 1
        assert await second.try_acquire("second") is None
        assert await first.alive()
        await first.release()
        assert await second.try_acquire("second") == 2
        assert not await first.alive()
        assert await first.try_acquire("first") is None
    finally:
        await first.release()
        await second.release()


@pytest.mark.postgres
async def test_a_frozen_holder_loses_the_lock_after_the_idle_session_timeout(pg_url: str) -> None:
    # The holder makes no query (as if SIGSTOPped): PostgreSQL ends its session and frees the lock.
    frozen = AdvisoryLock(asyncpg_dsn(pg_url), idle_session_timeout=1.0)
    standby = AdvisoryLock(asyncpg_dsn(pg_url))
    try:
        assert await frozen.try_acquire("frozen") == 1
        taken: list[int | None] = []

        async def standby_takes_over() -> bool:
            taken.append(await standby.try_acquire("standby"))
            return taken[-1] is not None

        elapsed = await _wait_for(standby_takes_over, 5.0)
        assert taken[-1] == 2
        assert 0.8 < elapsed < 3.0
        assert not await frozen.alive()
    finally:
        await frozen.release()
        await standby.release()


@pytest.mark.postgres
async def test_the_lock_connection_is_dedicated_and_the_epoch_row_is_stamped(pg_url: str) -> None:
    lock = AdvisoryLock(asyncpg_dsn(pg_url))
    conn = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        await lock.try_acquire("me")
        row = await conn.fetchrow(
            "SELECT a.application_name, l.granted FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory'"
        )
        lease = await conn.fetchrow("SELECT epoch, holder FROM scheduler_lease WHERE name = 'scheduler'")
        assert (row["application_name"], row["granted"]) == ("seymour-scheduler-lock", True)
        assert (lease["epoch"], lease["holder"]) == (1, "me")
    finally:
        await conn.close()
        await lock.release()
