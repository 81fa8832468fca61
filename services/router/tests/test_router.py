"""Router: one run per region per slot, deterministic ids, expiry, missed runs, epoch fencing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from contracts.topology import RESULTS_EXCHANGE, RUN_MISSED, QueueSpec, runner_queue
from contracts.v1 import (
    CheckDue,
    CheckDueBatch,
    CheckSpec,
    RunCheck,
    RunMissed,
    RunnerHeartbeat,
    encode,
    run_id_for,
    utcnow,
)
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.settings import Settings
from services.router.fanout import fan_out, run_ttl
from services.router.main import build
from tests.support.waiting import eventually

SPEC = CheckSpec(
    name="demo",
    request={"url": "http://127.0.0.1:9/"},  # type: ignore[arg-type]
    regions=["us-east-1", "eu-north-1", "ca-central-1"],
    interval=60,
)


def due(**changes: Any) -> CheckDue:
    values: dict[str, Any] = {
        "check_id": uuid.UUID(int=7),
        "slot": utcnow(),
        "revision": 1,
        "spec": SPEC,
        "epoch": 1,
    }
    values.update(changes)
    return CheckDue(**values)


def test_fan_out_one_run_per_region_with_deterministic_ids() -> None:
    message = due()
    runs = fan_out(message, ttl=30)
    assert [run.region for run in runs] == ["us-east-1", "eu-north-1", "ca-central-1"]
    assert [run.run_id for run in runs] == [run.run_id for run in fan_out(message, ttl=30)]
    assert len({run.run_id for run in runs}) == 3
    assert runs[0].run_id == run_id_for(message.check_id, message.slot, "us-east-1")
    assert all(run.expires_at == message.slot + timedelta(seconds=30) for run in runs)
    manual = fan_out(due(trigger="manual"), ttl=30)
    assert manual[0].run_id != runs[0].run_id


def test_runs_sent_to_regions_carry_no_alert_channels_or_their_secrets() -> None:
    """A region host executes the request; it has no business with whom the home alerts, or how."""
    spec = CheckSpec.model_validate(
        {
            **SPEC.model_dump(mode="json"),
            "alerts": [
                {"channel": "webhook", "url": "https://hooks.example.com/x", "secret": "hook-secret-1"},
                {"channel": "pagerduty", "routing_key": "pd-routing-key-2"},
            ],
        }
    )
    runs = fan_out(due(spec=spec), ttl=30)
    for run in runs:
        wire = encode(run)
        assert b"hook-secret-1" not in wire
        assert b"pd-routing-key-2" not in wire
        assert b"hooks.example.com" not in wire
        assert run.spec.alerts == []
        assert run.spec.request == spec.request
        assert run.spec.assertions == spec.assertions


def test_confirmation_runs_go_only_to_the_named_regions() -> None:
    runs = fan_out(due(trigger="confirmation", regions=["eu-north-1"]), ttl=30)
    assert [run.region for run in runs] == ["eu-north-1"]


@pytest.mark.parametrize(
    ("interval", "expected"), [(1, 5.0), (30, 30.0), (3600, 60.0)], ids=["short", "mid", "long"]
)
def test_run_ttl_is_the_interval_clamped(interval: int, expected: float) -> None:
    assert run_ttl(interval, minimum=5, maximum=60) == expected


class Collector:
    def __init__(self) -> None:
        self.items: list[Any] = []

    async def __call__(self, message: Any, delivery: Delivery) -> None:
        self.items.append(message)


async def wait_for(predicate: Any, within: float = 5.0) -> None:
    await eventually(predicate, within=within, every=0.01)


@pytest.fixture
async def router_bus() -> Any:
    bus = MemoryBus()
    service = build(Settings(run_expiry_min=0.2, run_expiry_max=0.2), bus)
    for route in service.routes:
        bus.subscribe(route)
    missed = Collector()
    bus.subscribe(Route(QueueSpec("test.missed", RESULTS_EXCHANGE, (RUN_MISSED,)), {RunMissed: missed}))
    await bus.start()
    yield bus, missed
    await bus.stop()


async def test_runs_reach_region_queues_and_missing_regions_are_missed(router_bus: Any) -> None:
    bus, missed = router_bus
    runs = Collector()
    bus.subscribe(Route(runner_queue("us-east-1"), {RunCheck: runs}))
    await bus.publish(due())
    await wait_for(lambda: len(runs.items) == 1 and len(missed.items) == 2)
    assert runs.items[0].region == "us-east-1"
    assert {m.region for m in missed.items} == {"eu-north-1", "ca-central-1"}
    assert {m.reason for m in missed.items} == {"no_runner"}


async def test_an_unconsumed_run_expires_into_a_missed_run(router_bus: Any) -> None:
    bus, missed = router_bus
    await bus.declare_queue(runner_queue("us-east-1"))
    await bus.publish(
        RunnerHeartbeat(
            runner_id="r", region="us-east-1", runner_version="x", capacity=1, started_at=utcnow()
        )
    )
    await bus.publish(due(spec=SPEC.model_copy(update={"regions": ["us-east-1"]})))
    await asyncio.sleep(0.4)
    # nothing consumed runner.us-east-1; a consumer arriving late finds the run expired
    late = Collector()
    bus.subscribe(Route(runner_queue("us-east-1"), {RunCheck: late}))
    await wait_for(lambda: len(missed.items) == 1)
    assert late.items == []
    assert missed.items[0].reason == "expired"
    assert missed.items[0].detail == "expired in queue"


async def test_slots_from_a_deposed_scheduler_are_dropped(router_bus: Any) -> None:
    bus, _ = router_bus
    runs = Collector()
    for region in SPEC.regions:
        bus.subscribe(Route(runner_queue(region), {RunCheck: runs}))
    # Slots ahead of now: with the fixture's 0.2 s expiry, a loaded machine could expire them first.
    await bus.publish(due(epoch=5, slot=utcnow() + timedelta(seconds=2)))
    await wait_for(lambda: len(runs.items) == 3)
    await bus.publish(due(epoch=4, slot=utcnow() + timedelta(seconds=3)))
    await bus.publish(due(epoch=4, trigger="manual", slot=utcnow() + timedelta(seconds=3)))
    await wait_for(lambda: len(runs.items) == 6)
    await asyncio.sleep(0.05)
    assert len(runs.items) == 6
    assert {run.trigger for run in runs.items[3:]} == {"manual"}


async def test_a_run_nobody_consumes_still_expires_into_a_missed_run(router_bus: Any) -> None:
    bus, missed = router_bus
    await bus.declare_queue(runner_queue("eu-north-1"))
    await bus.publish(due(spec=SPEC.model_copy(update={"regions": ["eu-north-1"]})))
    await wait_for(lambda: len(missed.items) == 1, within=3)
    assert missed.items[0].region == "eu-north-1"
    assert missed.items[0].reason == "no_runner"


async def test_a_batch_routes_every_slot_as_if_it_came_alone(router_bus: Any) -> None:
    """Each item keeps its own run ids, regions, expiry and fencing; a redelivered batch adds no run id."""
    bus, missed = router_bus
    runs = Collector()
    for region in SPEC.regions:
        bus.subscribe(Route(runner_queue(region), {RunCheck: runs}))
    now = utcnow() + timedelta(seconds=2)  # ahead of the fixture's 0.2 s expiry, even on a loaded machine
    items = [
        due(check_id=uuid.UUID(int=1), slot=now, epoch=3),
        due(check_id=uuid.UUID(int=2), slot=now, epoch=3, trigger="confirmation", regions=["eu-north-1"]),
        due(check_id=uuid.UUID(int=3), slot=now - timedelta(seconds=7), epoch=3),  # older than its ttl
        due(check_id=uuid.UUID(int=4), slot=now, epoch=2),  # fired by a deposed leader
    ]
    batch = CheckDueBatch(items=items)
    await bus.publish(batch)
    await bus.publish(batch)  # as if redelivered
    await wait_for(lambda: len(runs.items) == 8 and len(missed.items) == 6)
    await asyncio.sleep(0.05)
    expected = {run_id_for(uuid.UUID(int=1), now, region) for region in SPEC.regions} | {
        run_id_for(uuid.UUID(int=2), now, "eu-north-1", "confirmation")
    }
    assert {run.run_id for run in runs.items} == expected
    assert len(runs.items) == 8
    assert {m.check_id for m in missed.items} == {uuid.UUID(int=3)}
    assert {m.detail for m in missed.items} == {"expired before routing"}
    assert len({m.run_id for m in missed.items}) == 3
