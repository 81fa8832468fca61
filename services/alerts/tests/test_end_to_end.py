"""End to end over the in-process bus: results in, exactly one notification per channel per transition out —
also across a kill and restart mid-incident — on SQLite and on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.topology import ROUTER_DUE
from contracts.v1 import AssertionOutcome, CheckCompleted, CheckDue, ResponseSample
from contracts.v1.base import utcnow
from services.alerts.delivery import DeliveryConfig
from services.alerts.main import AlertsOptions, build
from services.alerts.tests.conftest import all_channels, store_check
from services.alerts.tests.receivers import MailBox, Receiver
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.incidents import list_incidents
from services.common.db.models import AlertState, Incident, Notification
from services.common.metrics import render_stored_metrics
from services.common.service import Service
from services.common.settings import Settings
from tests.support.waiting import eventually

REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]
T0 = utcnow().replace(second=0, microsecond=0) - timedelta(minutes=30)
PATHS = ["/slack", "/discord", "/webhook", "/pagerduty", "/teams"]


def result(
    check_id: uuid.UUID, slot: int, region: str, passed: bool, trigger: str = "scheduled"
) -> CheckCompleted:
    at = T0 + timedelta(minutes=slot)
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=check_id,
        slot=at,
        region=region,
        trigger=trigger,  # type: ignore[arg-type]
        status="passed" if passed else "failed",
        started_at=at,
        completed_at=at + timedelta(milliseconds=80),
        response=ResponseSample(status_code=200 if passed else 503),
        assertions=[
            AssertionOutcome(
                source="status_code",
                comparison="equals",
                target=200,
                observed=200 if passed else 503,
                passed=passed,
            )
        ],
    )


@dataclass
class Running:
    bus: MemoryBus
    service: Service
    sessions: Any
    engine: Any

    async def stop(self) -> None:
        await self.bus.stop()
        await self.service.stop()
        await self.engine.dispose()


async def start(db_url: str, smtp_port: int, delivery: DeliveryConfig) -> Running:
    settings = Settings(
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_security="none", base_url="https://seymour.example"
    )
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(settings, bus, sessions, AlertsOptions(delivery=delivery, tick_interval=0.1))
    await service.start()
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    return Running(bus, service, sessions, engine)


async def publish_slots(bus: MemoryBus, check_id: uuid.UUID, slots: range, passed: bool) -> None:
    for slot in slots:
        for region in REGIONS:
            await bus.publish(result(check_id, slot, region, passed))


async def wait_for(condition: Callable[[], Awaitable[bool]], deadline: float = 20.0) -> None:
    await eventually(condition, within=deadline)


def evaluated_upto(running: Running, check_id: uuid.UUID, slot: int) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        async with running.sessions() as session:
            state = await session.scalar(select(AlertState.state).where(AlertState.check_id == check_id))
        last = state.get("last_slot") if state else None
        return last is not None and datetime.fromisoformat(last) == T0 + timedelta(minutes=slot)

    return condition


def notifications_settled(running: Running, count: int, pending: int = 0) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        async with running.sessions() as session:
            rows = (
                await session.execute(select(Notification.status, func.count()).group_by(Notification.status))
            ).all()
        by_status = dict(rows)  # type: ignore[arg-type]
        return by_status.get("sent", 0) == count and by_status.get("pending", 0) == pending

    return condition


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url"))


def assert_one_failure_and_one_recovery(receiver: Receiver, box: MailBox) -> None:
    assert receiver.invalid == []
    for path in PATHS:
        assert len(receiver.bodies(path)) == 2, path
    assert [body["event"] for body in receiver.bodies("/webhook")] == ["failure", "recovery"]
    assert [body["event_action"] for body in receiver.bodies("/pagerduty")] == ["trigger", "resolve"]
    assert len({body["dedup_key"] for body in receiver.bodies("/pagerduty")}) == 1
    assert ["failing" in m["Subject"] for m in box.messages] == [True, False]
    assert "recovered" in box.messages[1]["Subject"]
    failure = receiver.bodies("/webhook")[0]
    assert [r["region"] for r in failure["failing_regions"]] == sorted(REGIONS)
    assert failure["first_failure"]["observed"] == 503
    assert failure["url"].startswith("https://seymour.example/checks/")


async def test_ten_failing_slots_one_notification_per_channel_then_one_recovery(
    db_url: str, receiver: Receiver, mailbox: tuple[MailBox, int]
) -> None:
    box, port = mailbox
    check_id = await store_check(db_url, all_channels(receiver.url))
    running = await start(db_url, port, DeliveryConfig(poll_interval=0.05, backoff_base=0.05))
    try:
        await publish_slots(running.bus, check_id, range(10), passed=False)
        await wait_for(evaluated_upto(running, check_id, 9))
        await wait_for(notifications_settled(running, 6))
        await publish_slots(running.bus, check_id, range(10, 13), passed=True)
        await wait_for(evaluated_upto(running, check_id, 12))
        await wait_for(notifications_settled(running, 12))
        incidents = await list_incidents(running.sessions, check_id=check_id, with_notifications=True)
        stored = await render_stored_metrics(running.sessions)
    finally:
        await running.stop()
    assert_one_failure_and_one_recovery(receiver, box)
    (incident,) = incidents
    assert incident["state"] == "resolved"
    assert incident["opened_slot"] == (T0 + timedelta(minutes=1)).isoformat()
    assert [r["region"] for r in incident["failing_regions"]] == sorted(REGIONS)
    assert incident["failing_assertions"][0]["observed"] == 503
    assert incident["resolve_reason"] == "passed 1 consecutive slot(s)"
    assert sorted(n["transition"] for n in incident["notifications"]) == ["failure"] * 6 + ["recovery"] * 6
    assert 'seymour_notifications_stored{status="sent"} 12' in stored
    assert "seymour_incidents_open 0" in stored


async def test_kill_and_restart_mid_incident_sends_nothing_twice_and_loses_nothing(
    db_url: str, receiver: Receiver, mailbox: tuple[MailBox, int]
) -> None:
    box, port = mailbox
    check_id = await store_check(db_url, all_channels(receiver.url))
    receiver.always["/slack"] = (500, {})
    delivery = DeliveryConfig(poll_interval=0.05, backoff_base=0.05, backoff_cap=0.1, max_attempts=1000)
    first = await start(db_url, port, delivery)
    try:
        await publish_slots(first.bus, check_id, range(5), passed=False)
        await wait_for(evaluated_upto(first, check_id, 4))
        await wait_for(notifications_settled(first, 5, pending=1))

        async def slack_retried() -> bool:
            return receiver.hits["/slack"] >= 3

        await wait_for(slack_retried)
    finally:
        await first.stop()
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session:
        pending = (await session.scalars(select(Notification).where(Notification.status == "pending"))).all()
    await engine.dispose()
    assert [(n.channel_type, n.transition) for n in pending] == [("slack", "failure")]
    assert pending[0].attempts >= 2

    del receiver.always["/slack"]
    second = await start(db_url, port, delivery)
    try:
        # the broker redelivers what the first process had consumed but maybe not acked, then new slots
        await publish_slots(second.bus, check_id, range(3, 10), passed=False)
        await wait_for(evaluated_upto(second, check_id, 9))
        await wait_for(notifications_settled(second, 6))
        await publish_slots(second.bus, check_id, range(10, 13), passed=True)
        await wait_for(evaluated_upto(second, check_id, 12))
        await wait_for(notifications_settled(second, 12))
        async with second.sessions() as session:
            incidents = (await session.scalars(select(Incident))).all()
    finally:
        await second.stop()
    assert_one_failure_and_one_recovery(receiver, box)
    assert len(incidents) == 1
    assert incidents[0].state == "resolved"


async def test_confirmation_run_is_requested_and_its_failure_opens(
    sqlite_url: str, receiver: Receiver, mailbox: tuple[MailBox, int]
) -> None:
    _box, port = mailbox
    check_id = await store_check(sqlite_url, all_channels(receiver.url, confirm_from_another_region=True))
    running = await start(sqlite_url, port, DeliveryConfig(poll_interval=0.05))
    requested: list[CheckDue] = []

    async def capture(message: CheckDue, delivery: Delivery) -> None:
        requested.append(message)

    running.bus.subscribe(Route(ROUTER_DUE, {CheckDue: capture}))
    try:
        for slot in range(2):
            for region in REGIONS:
                await running.bus.publish(result(check_id, slot, region, passed=region != "us-east-1"))

        async def asked() -> bool:
            return len(requested) == 1

        await wait_for(asked)
        (due,) = requested
        assert (due.trigger, due.regions, due.slot) == (
            "confirmation",
            ["ap-south-1"],
            T0 + timedelta(minutes=1),
        )
        assert receiver.accepted == []
        await running.bus.publish(result(check_id, 1, "ap-south-1", passed=False, trigger="confirmation"))
        await wait_for(notifications_settled(running, 6))
        incidents = await list_incidents(running.sessions, state="open")
    finally:
        await running.stop()
    (incident,) = incidents
    assert [r["region"] for r in incident["failing_regions"]] == ["ap-south-1", "us-east-1"]
    assert incident["note"] == "confirmed from ap-south-1"
