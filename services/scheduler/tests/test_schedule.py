"""The schedule over the in-process bus and SQLite: rebuilt from the db, following CheckChanged within 1 s."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED
from sqlalchemy import update

from contracts.topology import ROUTER_DUE
from contracts.v1 import CheckChanged, CheckDue, CheckDueBatch, CheckSpec, RequestSpec, due_slots
from contracts.v1.base import utcnow
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Check
from services.common.service import Service
from services.common.settings import Settings
from services.scheduler.jobs import SlotExecutor
from services.scheduler.main import build
from services.scheduler.schedule import CheckSchedule, Scheduled
from services.scheduler.slots import is_slot, offset_of
from tests.support.waiting import took


def spec(name: str, interval: int = 1, *, enabled: bool = True, path: str = "/") -> CheckSpec:
    return CheckSpec(
        name=name,
        request=RequestSpec(url=f"http://127.0.0.1:9{path}"),
        regions=["eu-north-1"],
        interval=interval,
        enabled=enabled,
    )


@dataclass
class Harness:
    bus: MemoryBus
    sessions: Any
    service: Service
    due: list[CheckDue] = field(default_factory=list)

    @property
    def schedule(self) -> CheckSchedule:
        return next(item for item in self.service.lifecycles if isinstance(item, CheckSchedule))

    async def add_check(self, check_spec: CheckSpec, *, enabled: bool = True, revision: int = 1) -> uuid.UUID:
        check_id = uuid.uuid4()
        async with self.sessions.begin() as session:
            session.add(
                Check(
                    id=check_id,
                    name=check_spec.name,
                    spec=check_spec.model_dump(mode="json"),
                    enabled=enabled,
                    revision=revision,
                )
            )
        return check_id

    async def wait_due(self, check_id: uuid.UUID, deadline_s: float, **expected: Any) -> CheckDue:
        def match(message: CheckDue) -> bool:
            return message.check_id == check_id and all(getattr(message, k) == v for k, v in expected.items())

        await wait_until(lambda: any(match(m) for m in self.due), deadline_s)
        return next(m for m in self.due if match(m))


async def wait_until(condition: Callable[[], bool], deadline_s: float) -> float:
    """Poll ``condition`` until true; return how long it took; fail past the deadline."""
    return await took(condition, within=deadline_s, every=0.01)


@pytest.fixture
async def harness_factory(sqlite_url: str) -> AsyncIterator[Callable[[], Awaitable[Harness]]]:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    started: list[Harness] = []

    async def start() -> Harness:
        bus = MemoryBus()
        service = build(Settings(database_url=sqlite_url, broker_url="memory://"), bus, sessions)
        harness = Harness(bus, sessions, service)

        async def collect(message: CheckDue | CheckDueBatch, delivery: Delivery) -> None:
            harness.due.extend(due_slots(message))

        for route in service.routes:
            bus.subscribe(route)
        bus.subscribe(Route(ROUTER_DUE, {CheckDue: collect, CheckDueBatch: collect}))
        await bus.start()
        await service.start()
        started.append(harness)
        return harness

    async def stop(harness: Harness) -> None:
        await harness.bus.stop()
        await harness.service.stop()

    try:
        yield start
    finally:
        for harness in started:
            await stop(harness)
        await engine.dispose()


async def test_jobs_are_rebuilt_from_the_database_at_start(harness_factory: Any) -> None:
    seed = await harness_factory()
    fast = await seed.add_check(spec("fast", 1), revision=3)
    slow = await seed.add_check(spec("slow", 300))
    off_row = await seed.add_check(spec("off-row"), enabled=False)
    off_spec = await seed.add_check(spec("off-spec", enabled=False))

    harness = await harness_factory()
    schedule = harness.schedule
    assert {check_id for check_id in (fast, slow, off_row, off_spec) if schedule.scheduled(check_id)} == {
        fast,
        slow,
    }
    assert schedule.scheduled(fast) == Scheduled(3, spec("fast", 1))
    next_slow = schedule.next_slot(slow)
    assert next_slow is not None
    assert round(next_slow.timestamp() * 1000) % 300_000 == offset_of(slow, 300)
    assert utcnow() <= next_slow <= utcnow() + timedelta(seconds=300)

    due = await harness.wait_due(fast, 3.0)
    assert (due.revision, due.trigger, due.spec.name) == (3, "scheduled", "fast")
    assert is_slot(fast, 1, due.slot)
    assert due.epoch == 2, "the second process to lead bumps the epoch"


def changed(check_id: uuid.UUID, change: str, revision: int, check_spec: CheckSpec | None) -> CheckChanged:
    return CheckChanged(check_id=check_id, change=change, revision=revision, spec=check_spec)  # type: ignore[arg-type]


CASES = [
    ("created", [], ("created", 1, spec("c", 1)), (1, 1)),
    ("updated-request", [("created", 1, spec("c", 60))], ("updated", 2, spec("c", 60, path="/v2")), (2, 60)),
    ("interval-changed", [("created", 1, spec("c", 60))], ("updated", 2, spec("c", 7)), (2, 7)),
    ("disabled", [("created", 1, spec("c", 1))], ("updated", 2, spec("c", 1, enabled=False)), None),
    (
        "re-enabled",
        [("created", 1, spec("c", 1)), ("updated", 2, spec("c", 1, enabled=False))],
        ("updated", 3, spec("c", 1)),
        (3, 1),
    ),
    ("deleted", [("created", 1, spec("c", 1))], ("deleted", 2, None), None),
    ("stale-revision-ignored", [("created", 5, spec("c", 60))], ("updated", 4, spec("c", 9)), (5, 60)),
    (
        "no-resurrection-after-delete",
        [("created", 1, spec("c", 1)), ("deleted", 2, None)],
        ("updated", 2, spec("c", 1)),
        None,
    ),
]


@pytest.mark.parametrize(("before", "change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_check_change_is_applied_within_one_second(
    harness_factory: Any,
    before: list[tuple[str, int, CheckSpec | None]],
    change: tuple[str, int, CheckSpec | None],
    expected: tuple[int, int] | None,
) -> None:
    harness = await harness_factory()
    schedule = harness.schedule
    check_id = uuid.uuid4()
    for kind, revision, check_spec in before:
        await harness.bus.publish(changed(check_id, kind, revision, check_spec))
    if before:
        last = before[-1][1]
        await wait_until(lambda: schedule.known_revision(check_id) == last, 1.0)

    await harness.bus.publish(changed(check_id, *change))

    def applied() -> bool:
        now = schedule.scheduled(check_id)
        if expected is None:
            return now is None and schedule.next_slot(check_id) is None
        return now is not None and (now.revision, now.spec.interval) == expected

    took = await wait_until(applied, 1.0)
    await asyncio.sleep(0)
    assert applied(), f"still applied after {took:.3f} s"
    if expected is not None:
        revision, interval = expected
        next_slot = schedule.next_slot(check_id)
        assert next_slot is not None
        assert is_slot(check_id, interval, next_slot)
        if interval == 1:
            due = await harness.wait_due(check_id, 2.5, revision=revision)
            assert due.spec == change[2]


async def test_a_database_change_without_a_message_is_picked_up_by_reconcile(harness_factory: Any) -> None:
    harness = await harness_factory()
    kept = await harness.add_check(spec("kept", 60))
    removed = await harness.add_check(spec("removed", 60))
    await harness.schedule.reconcile()
    async with harness.sessions.begin() as session:
        await session.execute(
            update(Check)
            .where(Check.id == kept)
            .values(revision=2, spec=spec("kept", 5).model_dump(mode="json"))
        )
        await session.execute(update(Check).where(Check.id == removed).values(enabled=False))
    await harness.schedule.reconcile()
    assert harness.schedule.scheduled(kept) == Scheduled(2, spec("kept", 5))
    assert harness.schedule.scheduled(removed) is None


class Standby:
    epoch = 9

    def is_leader(self) -> bool:
        return False


async def test_a_standby_keeps_its_jobs_but_publishes_nothing(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    bus = MemoryBus()
    due: list[CheckDue] = []

    async def collect(message: CheckDue | CheckDueBatch, delivery: Delivery) -> None:
        due.extend(due_slots(message))

    schedule = CheckSchedule(bus, make_sessionmaker(engine), Standby())
    bus.subscribe(Route(ROUTER_DUE, {CheckDue: collect, CheckDueBatch: collect}))
    await bus.start()
    await schedule.start()
    try:
        check_id = uuid.uuid4()
        schedule.apply_change(changed(check_id, "created", 1, spec("standby", 1)))
        await wait_until(lambda: schedule.counters.standby_skips >= 2, 3.0)
        assert schedule.scheduled(check_id) is not None
        assert (due, schedule.counters.fired) == ([], 0)
    finally:
        await schedule.stop()
        await bus.stop()
        await engine.dispose()


async def test_a_slot_later_than_its_misfire_grace_is_not_fired() -> None:
    fired: list[datetime] = []

    async def fire(check_id: uuid.UUID, slot: datetime) -> None:
        fired.append(slot)

    executor = SlotExecutor()
    job = SimpleNamespace(
        id="j",
        func=fire,
        args=(uuid.uuid4(),),
        kwargs={"slot": None},
        misfire_grace_time=1,
        _jobstore_alias="default",
    )
    now = datetime.now(UTC).replace(microsecond=0)
    events = await executor._run(job, [now - timedelta(seconds=5), now])
    assert [event.code for event in events] == [EVENT_JOB_MISSED, EVENT_JOB_EXECUTED]
    assert fired == [now], "the late slot is skipped, not fired late; the fresh one gets its own time"


async def test_after_a_gap_only_the_latest_slot_fires_not_a_backlog(harness_factory: Any) -> None:
    harness = await harness_factory()
    check_id = uuid.uuid4()
    harness.schedule.apply_change(changed(check_id, "created", 1, spec("gap", 1)))
    job = harness.schedule._scheduler.get_job(str(check_id))
    gap_start = job.next_run_time - timedelta(seconds=20)
    job.modify(next_run_time=gap_start)  # as if the loop had been stuck for 20 s
    harness.schedule._scheduler.wakeup()
    first = await harness.wait_due(check_id, 2.0)
    # Read when the first slot arrived, not after waiting for the second (that wait may take 2.5 s more).
    first_seen = utcnow()
    await wait_until(lambda: len([m for m in harness.due if m.check_id == check_id]) >= 2, 2.5)
    slots = [m.slot for m in harness.due if m.check_id == check_id]
    assert all(slot > gap_start + timedelta(seconds=15) for slot in slots), "no backlog of the gap is fired"
    assert len(slots) == len(set(slots))
    assert first.slot >= first_seen - timedelta(seconds=2), "the first slot fired is a fresh one"
