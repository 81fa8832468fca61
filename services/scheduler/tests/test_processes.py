"""Two scheduler processes on PostgreSQL + RabbitMQ: one leads; kill -9 or SIGSTOP it and the other takes
over without any slot being fired twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from contracts.topology import CHECK_DUE, CHECK_DUE_BATCH, CONTROL_EXCHANGE
from contracts.v1 import CheckDue, CheckDueBatch, CheckSpec, RequestSpec, decode, due_slots
from services.common.fencing import EpochFence
from services.scheduler.leader import asyncpg_dsn
from services.scheduler.slots import is_slot
from tests.support.waiting import took

pytestmark = [pytest.mark.postgres, pytest.mark.rabbit, pytest.mark.slow, pytest.mark.timeout(90)]

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Arrival:
    at: float
    message: CheckDue


@dataclass
class Collector:
    """Every slot due on the control exchange, in arrival order (a test-only queue bound to both due keys)."""

    arrivals: list[Arrival] = field(default_factory=list)

    def epochs(self, epoch: int) -> list[Arrival]:
        return [arrival for arrival in self.arrivals if arrival.message.epoch == epoch]


@pytest.fixture
async def collector(rabbit_url: str) -> AsyncIterator[Collector]:
    collected = Collector()
    connection = await aio_pika.connect(rabbit_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(CONTROL_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(exchange, CHECK_DUE)
        await queue.bind(exchange, CHECK_DUE_BATCH)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                decoded = decode(message.body)
                assert isinstance(decoded, CheckDue | CheckDueBatch)
                for due in due_slots(decoded):
                    collected.arrivals.append(Arrival(time.monotonic(), due))

        await queue.consume(on_message)
        yield collected
    finally:
        await connection.close()


@pytest.fixture
async def check_id(pg_url: str) -> uuid.UUID:
    spec = CheckSpec(
        name="every-second",
        request=RequestSpec(url="http://127.0.0.1:9/"),
        regions=["eu-north-1"],
        interval=1,
    )
    identifier = uuid.uuid4()
    conn = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        await conn.execute(
            "INSERT INTO checks (id, name, spec, enabled, revision, created_at, updated_at)"
            " VALUES ($1, $2, $3, true, 1, now(), now())",
            identifier,
            spec.name,
            spec.model_dump_json(),
        )
    finally:
        await conn.close()
    return identifier


@dataclass
class Scheduler:
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def logged(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")


@pytest.fixture
def spawn(pg_url: str, rabbit_url: str, tmp_path: Path) -> Iterator[Callable[[str], Scheduler]]:
    started: list[Scheduler] = []

    def start(name: str) -> Scheduler:
        log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "SEYMOUR_DATABASE_URL": pg_url,
            "SEYMOUR_BROKER_URL": rabbit_url,
            "SEYMOUR_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.scheduler", "--no-migrate"],
                cwd=REPO,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        scheduler = Scheduler(process, log)
        started.append(scheduler)
        return scheduler

    try:
        yield start
    finally:
        for scheduler in started:
            if scheduler.process.poll() is None:
                os.kill(scheduler.pid, signal.SIGCONT)
                scheduler.process.kill()
            scheduler.process.wait(timeout=10)


async def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> float:
    return await took(condition, within=deadline_s, every=0.02, what=what)


async def lease_holder_pid(pg_url: str) -> tuple[int, int] | None:
    conn = await asyncpg.connect(asyncpg_dsn(pg_url))
    try:
        row = await conn.fetchrow("SELECT epoch, holder FROM scheduler_lease WHERE name = 'scheduler'")
    finally:
        await conn.close()
    return None if row is None else (row["epoch"], int(row["holder"].rsplit("-", 2)[-2]))


async def leader_and_standby(
    spawn: Callable[[str], Scheduler], collector: Collector, pg_url: str
) -> tuple[Scheduler, Scheduler]:
    one, two = spawn("one"), spawn("two")
    for scheduler in (one, two):
        up = scheduler.logged
        await wait_until(lambda up=up: up("serving service=scheduler"), 30.0, "both schedulers up")
    await wait_until(lambda: len(collector.epochs(1)) >= 2, 5.0, "the leader fires")
    lease = await lease_holder_pid(pg_url)
    assert lease is not None
    assert lease[0] == 1, "only one process ever led"
    leader = one if lease[1] == one.pid else two
    return leader, (two if leader is one else one)


def assert_slots_fired_once(collector: Collector, check_id: uuid.UUID) -> None:
    slots = Counter(arrival.message.slot for arrival in collector.arrivals)
    assert [slot for slot, count in slots.items() if count > 1] == []
    assert all(arrival.message.check_id == check_id for arrival in collector.arrivals)
    assert all(is_slot(check_id, 1, arrival.message.slot) for arrival in collector.arrivals)


async def test_kill_9_of_the_leader_hands_over_to_the_standby_without_firing_a_slot_twice(
    spawn: Callable[[str], Scheduler], collector: Collector, pg_url: str, check_id: uuid.UUID
) -> None:
    leader, standby = await leader_and_standby(spawn, collector, pg_url)

    leader.process.kill()
    killed_at = time.monotonic()
    await wait_until(lambda: len(collector.epochs(2)) >= 3, 8.0, "the standby fires as the new leader")

    takeover = collector.epochs(2)[0].at - killed_at
    gap = collector.epochs(2)[0].message.slot - collector.epochs(1)[-1].message.slot
    print(f"kill -9: first new slot {takeover:.2f} s after the kill, slot gap {gap.total_seconds():.0f} s")
    assert takeover < 4.0
    assert gap.total_seconds() <= 4
    assert max(a.message.slot for a in collector.epochs(1)) < min(a.message.slot for a in collector.epochs(2))
    assert_slots_fired_once(collector, check_id)
    assert await lease_holder_pid(pg_url) == (2, standby.pid)


async def test_a_frozen_leader_is_replaced_and_fenced_when_it_wakes_up(
    spawn: Callable[[str], Scheduler], collector: Collector, pg_url: str, check_id: uuid.UUID
) -> None:
    leader, standby = await leader_and_standby(spawn, collector, pg_url)

    os.kill(leader.pid, signal.SIGSTOP)
    stopped_at = time.monotonic()
    await wait_until(lambda: len(collector.epochs(2)) >= 2, 15.0, "the standby replaces a frozen leader")
    takeover = collector.epochs(2)[0].at - stopped_at
    os.kill(leader.pid, signal.SIGCONT)
    await wait_until(lambda: leader.logged("lost scheduler leadership"), 10.0, "the woken leader steps down")
    fired_by_new = len(collector.epochs(2))
    await wait_until(lambda: len(collector.epochs(2)) >= fired_by_new + 2, 5.0, "the new leader keeps firing")

    fence = EpochFence()
    admitted = [arrival.message for arrival in collector.arrivals if fence.admit_due(arrival.message)]
    first_new = next(i for i, arrival in enumerate(collector.arrivals) if arrival.message.epoch == 2)
    stale = [arrival for arrival in collector.arrivals[first_new:] if arrival.message.epoch == 1]
    print(f"SIGSTOP: first new slot {takeover:.2f} s after the freeze; stale firings: {len(stale)}")
    assert 3.0 < takeover < 12.0, "the lock is released by PostgreSQL's idle_session_timeout, not before"
    assert fence.rejected == len(stale), "every firing of the deposed leader after the takeover is dropped"
    assert len({message.slot for message in admitted}) == len(admitted), "no admitted slot twice"
    assert await lease_holder_pid(pg_url) == (2, standby.pid)
    assert leader.process.poll() is None, "the woken leader keeps running as a standby"
