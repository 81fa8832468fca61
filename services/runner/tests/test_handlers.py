"""The runner as a service on the in-process bus: RunCheck in, CheckCompleted / RunMissed / heartbeats out."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.topology import RESULTS_EXCHANGE, QueueSpec, runner_queue
from contracts.v1 import CheckCompleted, CheckCompletedBatch, RunCheck, RunMissed, RunnerHeartbeat
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.settings import Settings
from services.runner.main import build
from services.runner.tests.support import make_spec

RESULTS_TAP = QueueSpec("test.results-tap", RESULTS_EXCHANGE, ("#",))


class Tap:
    """Collects everything published to the results exchange."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[Any] = asyncio.Queue()

    async def __call__(self, message: Any, delivery: Delivery) -> None:
        # A runner's batch stands for its results, each as if it came alone.
        for item in message.items if isinstance(message, CheckCompletedBatch) else [message]:
            await self.messages.put(item)

    async def next(self, kind: type) -> Any:
        """The next message of ``kind`` (others are skipped), within 5 seconds."""
        async with asyncio.timeout(5.0):
            while True:
                message = await self.messages.get()
                if isinstance(message, kind):
                    return message


@pytest.fixture
async def runner_bus() -> AsyncIterator[tuple[MemoryBus, Tap]]:
    """A MemoryBus with the runner for eu-north-1 subscribed and a tap on the results exchange."""
    settings = Settings(
        region="eu-north-1",
        runner_id="runner-test-1",
        runner_concurrency=8,
        heartbeat_interval=0.05,
        allowed_networks=[],
    )
    bus = MemoryBus()
    service = build(settings, bus)
    tap = Tap()
    types = (CheckCompleted, CheckCompletedBatch, RunMissed, RunnerHeartbeat)
    bus.subscribe(Route(RESULTS_TAP, dict.fromkeys(types, tap), prefetch=1))
    await service.start()
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    yield bus, tap
    await bus.stop()
    await service.stop()


def run_check(url: str, *, expires_in: float = 30.0, **spec_fields: Any) -> RunCheck:
    now = datetime.now(UTC)
    return RunCheck(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=now.replace(microsecond=0),
        region="eu-north-1",
        spec=make_spec(url, **spec_fields),
        expires_at=now + timedelta(seconds=expires_in),
    )


async def test_run_check_publishes_check_completed(runner_bus: tuple[MemoryBus, Tap], target: str) -> None:
    bus, tap = runner_bus
    command = run_check(
        f"{target}/todos",
        assertions=[{"source": "status_code", "comparison": "equals", "target": 201}],
        request={"method": "POST", "body": {"title": "x"}, "headers": {"Authorization": "Bearer t"}},
    )
    await bus.publish(command)
    completed = await tap.next(CheckCompleted)
    assert completed.run_id == command.run_id
    assert completed.check_id == command.check_id
    assert completed.slot == command.slot
    assert completed.region == "eu-north-1"
    assert completed.status == "passed"
    assert completed.runner_id == "runner-test-1"
    assert completed.assertions[0].observed == 201
    assert completed.timings.total_ms is not None
    assert completed.response is not None
    assert completed.response.status_code == 201
    assert completed.request is not None
    assert completed.request["headers"]["Authorization"] == "********"
    assert await bus.dead_letter_count() == 0


async def test_failing_endpoint_is_a_result_not_a_crash(
    runner_bus: tuple[MemoryBus, Tap], refused_port: int
) -> None:
    bus, tap = runner_bus
    command = run_check(f"http://127.0.0.1:{refused_port}/")
    await bus.publish(command)
    completed = await tap.next(CheckCompleted)
    assert (completed.run_id, completed.status) == (command.run_id, "error")
    assert completed.error is not None
    assert completed.error.cls == "connect"
    assert await bus.dead_letter_count() == 0


async def test_expired_run_is_missed_not_run(runner_bus: tuple[MemoryBus, Tap], target: str) -> None:
    bus, tap = runner_bus
    expired = run_check(f"{target}/todos", expires_in=-1.0)
    await bus.publish(expired)
    missed = await tap.next(RunMissed)
    assert missed.run_id == expired.run_id
    assert (missed.check_id, missed.slot, missed.region) == (expired.check_id, expired.slot, "eu-north-1")
    assert missed.reason == "expired"
    assert "runner-test-1" in missed.detail
    fresh = run_check(f"{target}/status/200")
    await bus.publish(fresh)
    completed = await tap.next(CheckCompleted)
    assert completed.run_id == fresh.run_id  # the expired run never produced a result


def test_build_wires_the_region_queue() -> None:
    settings = Settings(region="ap-south-1", runner_concurrency=17)
    service = build(settings, MemoryBus())
    [route] = service.routes
    assert route.queue == runner_queue("ap-south-1")
    assert route.prefetch == 17
    assert set(route.handlers) == {RunCheck}
    assert service.name == "runner"


async def test_heartbeats_announce_the_runner(runner_bus: tuple[MemoryBus, Tap]) -> None:
    _, tap = runner_bus
    first = await tap.next(RunnerHeartbeat)
    second = await tap.next(RunnerHeartbeat)
    assert first.runner_id == second.runner_id == "runner-test-1"
    assert first.region == "eu-north-1"
    assert first.capacity == 8
    assert first.in_flight == 0
    assert first.started_at == second.started_at
    assert first.interval_s == 0.05


async def test_in_flight_is_reported_while_running(runner_bus: tuple[MemoryBus, Tap], target: str) -> None:
    bus, tap = runner_bus
    await bus.publish(run_check(f"{target}/delay/400"))
    async with asyncio.timeout(5):
        while (await tap.next(RunnerHeartbeat)).in_flight != 1:
            pass
    await tap.next(CheckCompleted)
