"""Home believes a region's account only about that region: a compromised region host, holding its links'
account, forges results, heartbeats and dead runs for another region, leaves ``user_id`` out, smuggles a
missed run under a result's key, sends an oversized body, and claims to be home. Home's consumers
dead-letter each (and count them); what the region says about itself still arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import pytest
from aiormq.exceptions import ChannelPreconditionFailed

from contracts.topology import (
    ALERTS_EVALUATE,
    CHECK_COMPLETED,
    MAX_MESSAGE_BYTES,
    RESULTS_EXCHANGE,
    RESULTS_STORE,
    ROUTER_DEAD_RUNS,
    RUNNER_HEARTBEAT,
    RUNS_DEAD_LETTER_EXCHANGE,
)
from contracts.v1 import (
    AnyMessage,
    CheckCompleted,
    CheckSpec,
    RunCheck,
    RunMissed,
    RunnerHeartbeat,
    encode,
    utcnow,
)
from services.common.bus.protocol import Delivery, Route
from services.common.bus.rabbit import RabbitBus
from services.common.metrics import METRICS
from tests.federation.world import OTHER, REGION, region_account, wait_for
from tests.support.rabbit_node import with_credentials

pytestmark = [pytest.mark.rabbit]

REFUSED = "seymour_bus_refused_total"


def result(region: str, **changes: Any) -> CheckCompleted:
    now = utcnow()
    values: dict[str, Any] = {
        "run_id": uuid.uuid4(),
        "check_id": uuid.uuid4(),
        "slot": now,
        "region": region,
        "status": "passed",
        "started_at": now,
        "completed_at": now,
    }
    values.update(changes)
    return CheckCompleted(**values)


def heartbeat(region: str) -> RunnerHeartbeat:
    return RunnerHeartbeat(
        runner_id=f"r-{region}", region=region, runner_version="1", capacity=1, started_at=utcnow()
    )


def dead_run(region: str) -> RunCheck:
    spec = CheckSpec(name="x", request={"url": "http://127.0.0.1:9/"}, regions=[region])  # type: ignore[arg-type]
    now = utcnow()
    return RunCheck(
        run_id=uuid.uuid4(), check_id=uuid.uuid4(), slot=now, region=region, spec=spec, expires_at=now
    )


def missed(region: str) -> RunMissed:
    now = utcnow()
    return RunMissed(run_id=uuid.uuid4(), check_id=uuid.uuid4(), slot=now, region=region, reason="no_runner")


@dataclass
class Home:
    bus: RabbitBus
    seen: dict[str, list[AnyMessage]] = field(default_factory=dict)

    def collector(self, queue: str) -> Any:
        async def collect(message: AnyMessage, delivery: Delivery) -> None:
            self.seen.setdefault(queue, []).append(message)

        return collect

    def run_ids(self, queue: str) -> set[uuid.UUID]:
        return {message.run_id for message in self.seen.get(queue, []) if hasattr(message, "run_id")}


@pytest.fixture
async def home(rabbit_url: str) -> AsyncIterator[Home]:
    """Home's consumers of everything a region's account may write to."""
    bus = RabbitBus(rabbit_url, instance="home")
    state = Home(bus)
    kinds = (CheckCompleted, RunnerHeartbeat, RunMissed, RunCheck)
    for spec in (RESULTS_STORE, ALERTS_EVALUATE, ROUTER_DEAD_RUNS):
        bus.subscribe(Route(spec, {kind: state.collector(spec.name) for kind in kinds}))
    await bus.start()
    try:
        yield state
    finally:
        await bus.stop()


async def publish(url: str, exchange: str, key: str, body: bytes, user_id: str | None) -> None:
    """Publish as a region host would with its own client: any body, any properties."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(aio_pika.Message(body, user_id=user_id), key)
    finally:
        await connection.close()


async def test_home_believes_a_region_account_only_about_its_own_region(home: Home, rabbit_url: str) -> None:
    async with region_account(rabbit_url, REGION) as (user, password):
        url = with_credentials(rabbit_url, user, password)
        refused_before = METRICS.value(REFUSED)
        dead_before = await home.bus.dead_letter_count()
        oversized = result(REGION, request={"padding": "x" * MAX_MESSAGE_BYTES})
        forged = [
            (RESULTS_EXCHANGE, CHECK_COMPLETED, result(OTHER), user, 2),
            (RESULTS_EXCHANGE, CHECK_COMPLETED, result(REGION), None, 2),
            (RESULTS_EXCHANGE, CHECK_COMPLETED, missed(OTHER), user, 2),
            (RESULTS_EXCHANGE, CHECK_COMPLETED, oversized, user, 2),
            (RESULTS_EXCHANGE, RUNNER_HEARTBEAT, heartbeat(OTHER), user, 1),
            (RUNS_DEAD_LETTER_EXCHANGE, OTHER, dead_run(OTHER), user, 1),
        ]
        for exchange, key, message, sender, _ in forged:
            await publish(url, exchange, key, encode(message), sender)
        with pytest.raises(ChannelPreconditionFailed):  # claiming to be home: the broker refuses it
            await publish(url, RESULTS_EXCHANGE, CHECK_COMPLETED, encode(result(OTHER)), "guest")
        own_result, own_run = result(REGION), dead_run(REGION)
        await publish(url, RESULTS_EXCHANGE, CHECK_COMPLETED, encode(own_result), user)
        await publish(url, RESULTS_EXCHANGE, RUNNER_HEARTBEAT, encode(heartbeat(REGION)), user)
        await publish(url, RUNS_DEAD_LETTER_EXCHANGE, REGION, encode(own_run), user)

        expected_dead = sum(copies for *_, copies in forged)

        async def settled() -> bool:
            arrived = (
                home.run_ids(RESULTS_STORE.name) >= {own_result.run_id}
                and home.run_ids(ALERTS_EVALUATE.name) >= {own_result.run_id}
                and home.run_ids(ROUTER_DEAD_RUNS.name) >= {own_run.run_id}
            )
            return arrived and await home.bus.dead_letter_count() - dead_before >= expected_dead

        await wait_for(settled, within=20, what="the region's own messages and every forgery dead-lettered")
        await asyncio.sleep(0)
        for queue in (RESULTS_STORE.name, ALERTS_EVALUATE.name, ROUTER_DEAD_RUNS.name):
            regions = {getattr(message, "region", None) for message in home.seen.get(queue, [])}
            assert regions == {REGION}, queue
        assert home.run_ids(RESULTS_STORE.name) == {own_result.run_id}
        assert [m.region for m in home.seen[RESULTS_STORE.name] if isinstance(m, RunnerHeartbeat)] == [REGION]
        assert await home.bus.dead_letter_count() - dead_before == expected_dead
        assert METRICS.value(REFUSED) - refused_before == expected_dead
