"""Every slot ends as exactly one record — fired, or missed with a reason — whatever the scheduler lost.

The database or the broker goes away under a running scheduler (through a TCP proxy that is cut, so the
shared servers keep running); afterwards every slot of the window has exactly one ``CheckDue`` or one
``RunMissed`` per region, never none and never both.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import pytest
from sqlalchemy.engine import make_url

from contracts.topology import (
    CHECK_DUE,
    CHECK_DUE_BATCH,
    CONTROL_EXCHANGE,
    RESULTS_EXCHANGE,
    RESULTS_STORE,
    ROUTER_DUE,
    RUN_MISSED,
)
from contracts.v1 import (
    CheckDue,
    CheckDueBatch,
    CheckSpec,
    RequestSpec,
    RunMissed,
    decode,
    due_slots,
    utcnow,
)
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Check, SchedulerSlot
from services.common.settings import Settings
from services.scheduler.ledger import SlotLedger
from services.scheduler.main import build
from services.scheduler.schedule import CheckSchedule
from services.scheduler.slots import slots_between
from tests.support.proxy import TcpProxy
from tests.support.waiting import eventually

REGIONS = ["eu-north-1", "us-east-1"]


@dataclass
class Records:
    """What left the scheduler: slots fired and slots recorded missed, per (slot, region)."""

    fired: list[CheckDue] = field(default_factory=list)
    missed: list[RunMissed] = field(default_factory=list)

    def per_slot_region(self) -> Counter[tuple[datetime, str]]:
        counts: Counter[tuple[datetime, str]] = Counter()
        for due in self.fired:
            counts.update((due.slot, region) for region in due.spec.regions)
        counts.update((miss.slot, miss.region) for miss in self.missed)
        return counts

    def reasons(self) -> Counter[str]:
        return Counter(miss.reason for miss in self.missed)


async def wait_until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    await eventually(condition, within=deadline_s, what=what)


async def add_check(sessions: Any, name: str) -> uuid.UUID:
    spec = CheckSpec(name=name, request=RequestSpec(url="http://127.0.0.1:9/"), regions=REGIONS, interval=1)
    check_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            Check(
                id=check_id,
                name=name,
                spec=spec.model_dump(mode="json"),
                revision=1,
                updated_at=utcnow() - timedelta(hours=1),
            )
        )
    return check_id


def assert_every_slot_once(records: Records, check_id: uuid.UUID, start: datetime, end: datetime) -> None:
    """Each slot in [start, end] has one record per region: a fired slot or a miss, never none or two."""
    counts = records.per_slot_region()
    expected = [(slot, region) for slot in slots_between(check_id, 1, start, end) for region in REGIONS]
    lost = [key for key in expected if counts[key] == 0]
    twice = [key for key in expected if counts[key] > 1]
    assert (len(lost), len(twice)) == (0, 0), f"lost={lost[:5]} twice={twice[:5]} of {len(expected)}"


def proxied(url: str, proxy: TcpProxy) -> str:
    return make_url(url).set(port=proxy.port).render_as_string(hide_password=False)


@pytest.fixture
async def pg_proxy(pg_url: str) -> AsyncIterator[TcpProxy]:
    parsed = make_url(pg_url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432)
    await proxy.start()
    yield proxy
    await proxy.close()


@pytest.mark.postgres
@pytest.mark.timeout(60)
async def test_slots_without_a_leader_while_the_database_is_away_are_recorded_missed_once(
    pg_url: str, pg_proxy: TcpProxy
) -> None:
    url = proxied(pg_url, pg_proxy)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    records = Records()

    async def on_due(message: CheckDue | CheckDueBatch, delivery: Delivery) -> None:
        records.fired.extend(due_slots(message))

    async def on_missed(message: RunMissed, delivery: Delivery) -> None:
        records.missed.append(message)

    check_id = await add_check(sessions, "db-away")
    service = build(Settings(database_url=url, broker_url="memory://"), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    bus.subscribe(Route(ROUTER_DUE, {CheckDue: on_due, CheckDueBatch: on_due}))
    bus.subscribe(Route(RESULTS_STORE, {RunMissed: on_missed}))
    await bus.start()
    await service.start()
    try:
        await wait_until(lambda: len(records.fired) >= 3, 10.0, "the leader fires")
        start = records.fired[0].slot
        await pg_proxy.cut()
        await wait_until(lambda: not _leading(service), 15.0, "the leader loses its lock")
        await asyncio.sleep(4.0)  # the outage: slots pass with no leader (the point of the test)
        await pg_proxy.restore()
        await wait_until(lambda: records.reasons()["no_leader"] >= 2 * len(REGIONS), 20.0, "gap recorded")
        after = len(records.fired)
        await wait_until(lambda: len(records.fired) >= after + 2, 10.0, "firing resumes")
        end = records.fired[-1].slot
        assert_every_slot_once(records, check_id, start - timedelta(microseconds=1), end)
        assert set(records.reasons()) == {"no_leader"}
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


def _leading(service: Any) -> bool:
    schedule = next(item for item in service.lifecycles if isinstance(item, CheckSchedule))
    return bool(schedule._leadership.is_leader())


@dataclass
class RabbitRecorder:
    records: Records = field(default_factory=Records)
    connection: Any = None

    async def start(self, url: str) -> None:
        self.connection = await aio_pika.connect(url)
        channel = await self.connection.channel()
        control = await channel.declare_exchange(CONTROL_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        results = await channel.declare_exchange(RESULTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue("", exclusive=True)
        await queue.bind(control, CHECK_DUE)
        await queue.bind(control, CHECK_DUE_BATCH)
        await queue.bind(results, RUN_MISSED)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                decoded = decode(message.body)
                if isinstance(decoded, CheckDue | CheckDueBatch):
                    self.records.fired.extend(due_slots(decoded))
                elif isinstance(decoded, RunMissed):
                    self.records.missed.append(decoded)

        await queue.consume(on_message)


@pytest.mark.postgres
@pytest.mark.rabbit
@pytest.mark.timeout(90)
async def test_slots_the_broker_would_not_take_are_published_or_recorded_missed_once_it_is_back(
    pg_url: str, rabbit_url: str
) -> None:
    parsed = make_url(rabbit_url.replace("amqp://", "postgresql://", 1))
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5672)
    await proxy.start()
    recorder = RabbitRecorder()
    await recorder.start(rabbit_url)
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    vhost = rabbit_url.rsplit("/", 1)[1]
    bus = RabbitBus(proxy.url(vhost), publish_timeout=1.0, reconnect_interval=1.0)
    check_id = await add_check(sessions, "broker-away")
    service = build(Settings(database_url=pg_url, broker_url=proxy.url(vhost)), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    records = recorder.records
    try:
        await wait_until(lambda: len(records.fired) >= 3, 10.0, "the leader fires")
        start = records.fired[0].slot
        await proxy.cut()
        cut_at = utcnow()
        await asyncio.sleep(5.0)  # the outage: slots come due with no broker (the point of the test)
        await proxy.restore()
        await wait_until(
            lambda: any(due.slot > cut_at + timedelta(seconds=7) for due in records.fired),
            30.0,
            "firing resumes after the broker is back",
        )
        await asyncio.sleep(1.5)  # let the last in-flight firing land
        end = max(due.slot for due in records.fired)
        assert_every_slot_once(records, check_id, start - timedelta(microseconds=1), end)
        assert records.reasons()["not_published"] >= 1, "stale slots are recorded, not fired late"
        assert set(records.reasons()) <= {"not_published"}
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
        await recorder.connection.close()
        await proxy.close()


class Leading:
    epoch = 1

    def is_leader(self) -> bool:
        return True


def skipping_spec() -> CheckSpec:
    return CheckSpec(name="s", request=RequestSpec(url="http://127.0.0.1:9/"), regions=REGIONS, interval=1)


async def drained_misses(ledger: SlotLedger, bus: MemoryBus, expected: int) -> list[RunMissed]:
    """Publish the ledger's backlog and return the ``RunMissed`` records that reached results."""
    missed: list[RunMissed] = []

    async def on_missed(message: RunMissed, delivery: Delivery) -> None:
        missed.append(message)

    bus.subscribe(Route(RESULTS_STORE, {RunMissed: on_missed}))
    await bus.start()
    try:
        await ledger.drain()
        await wait_until(lambda: len(missed) >= expected, 5.0, f"{expected} misses stored")
    finally:
        await bus.stop()
    return missed


async def test_slots_a_leader_skipped_are_recorded_missed_leader_late_at_its_next_firing(
    sqlite_url: str,
) -> None:
    engine = make_engine(sqlite_url)
    bus = MemoryBus()
    ledger = SlotLedger(bus, make_sessionmaker(engine), Leading(), freshness=float)
    spec = skipping_spec()
    check_id = uuid.uuid4()
    now = utcnow()
    first, *skipped, last = slots_between(check_id, 1, now - timedelta(seconds=5), now)
    try:
        assert not ledger.claim(check_id, first, 1, spec), "nothing is fired before the gap is recorded"
        assert await ledger.record_gaps(lambda _check: None) == 0
        assert ledger.claim(check_id, first, 1, spec)
        assert ledger.claim(check_id, last, 1, spec)
        assert not ledger.claim(check_id, last, 1, spec), "a slot is claimed once"
        assert ledger.backlog == len(skipped) == 3
        missed = await drained_misses(ledger, bus, len(skipped) * len(REGIONS))
        assert sorted((miss.slot, miss.region) for miss in missed) == sorted(
            (slot, region) for slot in skipped for region in REGIONS
        )
        assert {miss.reason for miss in missed} == {"leader_late"}, "a leader was leading: its own lateness"
    finally:
        await engine.dispose()


async def test_slots_that_passed_with_no_leader_are_recorded_no_leader_and_the_next_firing_adds_none(
    sqlite_url: str,
) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    now = utcnow()
    ledger = SlotLedger(bus, sessions, Leading(), freshness=float, clock=lambda: now)
    spec = skipping_spec()
    check_id = await add_check(sessions, "leaderless")
    last_fired, *passed = slots_between(check_id, 1, now - timedelta(seconds=5), now)
    async with sessions.begin() as session:
        session.add(SchedulerSlot(check_id=check_id, last_slot=last_fired, epoch=0))
    try:
        assert await ledger.record_gaps(lambda _check: (1, spec)) == len(passed)
        following = ledger.last_handled(check_id)
        assert following is not None
        assert ledger.claim(check_id, following + timedelta(seconds=1), 1, spec), "the next slot fires"
        assert ledger.backlog == len(passed), "the slot after the gap adds no leader_late miss"
        missed = await drained_misses(ledger, bus, len(passed) * len(REGIONS))
        assert sorted((miss.slot, miss.region) for miss in missed) == sorted(
            (slot, region) for slot in passed for region in REGIONS
        )
        assert {miss.reason for miss in missed} == {"no_leader"}
    finally:
        await engine.dispose()
