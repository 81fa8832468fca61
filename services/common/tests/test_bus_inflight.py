"""Prefetch by items on real RabbitMQ: a consumer of runners' batches holds about ``inflight_items``
results unacked, not ``prefetch`` messages of a hundred results each; single results still get the whole
prefetch; and narrowing the prefetch on a live channel loses or repeats nothing.

The count of unacked messages is the broker's own (``rabbitmqctl list_queues``, not the management API's
sampled figures), read while the handler holds every batch it was given.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.topology import RESULTS_STORE
from contracts.v1 import CheckCompleted, CheckCompletedBatch, ResponseSample, RunnerHeartbeat, Timings
from services.common.bus import Batch, Delivery, Outcome, Route
from services.common.bus.rabbit import RabbitBus
from services.common.bus.rabbit_batch import MIN_PREFETCH, BatchConsumer, _Item
from services.common.tests.test_bus_behaviour import REGION, heartbeat, until, until_async


def completed(index: int) -> CheckCompleted:
    slot = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index)
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=slot,
        region=REGION,
        status="passed",
        started_at=slot,
        completed_at=slot + timedelta(milliseconds=20),
        response=ResponseSample(status_code=200, body="{}"),
        timings=Timings(total_ms=20.0),
    )


def items_in(message: Any) -> int:
    return len(message.items) if isinstance(message, CheckCompletedBatch) else 1


class Holding:
    """A batch handler that holds every call until released, then stores each item of each message."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls: list[int] = []
        self.stored: list[uuid.UUID | str] = []

    async def __call__(self, messages: Sequence[tuple[Any, Delivery]]) -> list[Outcome]:
        self.calls.append(len(messages))
        await self.release.wait()
        for message, _delivery in messages:
            if isinstance(message, CheckCompletedBatch):
                self.stored.extend(item.run_id for item in message.items)
            else:
                self.stored.append(message.runner_id)
        return [None] * len(messages)


def route(handler: Holding, *, prefetch: int, inflight_items: int) -> Route:
    return Route(
        RESULTS_STORE,
        {},
        prefetch=prefetch,
        batch=Batch(
            handler,
            frozenset({CheckCompletedBatch, RunnerHeartbeat}),
            max_items=prefetch // 3,
            max_wait_ms=20.0,
            weight=items_in,
            inflight_items=inflight_items,
        ),
    )


def unacked(rabbit_url: str) -> int:
    """The broker's live count of messages delivered and not yet acked on ``results.store``."""
    vhost = rabbit_url.rsplit("/", 1)[1]
    out = subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "list_queues",
            "-p",
            vhost,
            "--no-table-headers",
            "name",
            "messages_unacknowledged",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    counts = dict(line.split() for line in out.splitlines() if line.strip())
    return int(counts.get(RESULTS_STORE.name, 0))


async def _none_unacked(rabbit_url: str) -> bool:
    return await asyncio.to_thread(unacked, rabbit_url) == 0


async def held_settles_at(rabbit_url: str, expected: int, within: float = 60.0) -> list[int]:
    """Read the unacked count until it equals ``expected`` (the handler holds everything meanwhile);
    every reading on the way is returned, so a test can see it never went past."""
    readings: list[int] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readings.append(await asyncio.to_thread(unacked, rabbit_url))
        if readings[-1] == expected:
            await asyncio.sleep(0.5)  # and it stays there: nothing more arrives while all is held
            readings.append(await asyncio.to_thread(unacked, rabbit_url))
            return readings
        await asyncio.sleep(0.2)
    pytest.fail(f"unacked never reached {expected}: {readings}")


@pytest.mark.rabbit
async def test_batches_of_a_hundred_results_are_held_by_items_not_messages(rabbit_url: str) -> None:
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    handler = Holding()
    sent = [
        CheckCompletedBatch(region=REGION, items=[completed(100 * n + i) for i in range(100)])
        for n in range(60)
    ]
    await bus.declare_queue(RESULTS_STORE)
    await bus.start()
    try:
        for message in sent:  # a backlog of 6,000 results in 60 messages, as after an outage
            await bus.publish(message)
        bus.subscribe(route(handler, prefetch=600, inflight_items=1000))

        # The consumer starts at MIN_PREFETCH (4 messages, before it has weighed one), then consumes
        # again under 1000 // 100 = 10; the first consumer's 4 stay held until settled.
        readings = await held_settles_at(rabbit_url, MIN_PREFETCH + 10)
        assert max(readings) <= MIN_PREFETCH + 10, readings  # not 60 (the whole backlog; prefetch 600)
        assert bus._batches[0].prefetch == 10

        handler.release.set()
        run_ids = [item.run_id for message in sent for item in message.items]
        await until(lambda: len(handler.stored) >= len(run_ids), within=60, what="every result handed over")
        await asyncio.sleep(0.3)  # nothing comes back: every batch was acked
        assert sorted(handler.stored) == sorted(run_ids)  # each result once
        assert max(handler.calls) <= 10 // 3  # batches cut to fit depth + 1 in the prefetch
        await until_async(lambda: _none_unacked(rabbit_url), within=30, what="every batch acked")
        assert await bus.dead_letter_count() == 0
    finally:
        await bus.stop()


@pytest.mark.rabbit
async def test_single_results_still_get_the_whole_prefetch(rabbit_url: str) -> None:
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    handler = Holding()
    sent = [heartbeat(f"r{n}") for n in range(300)]
    await bus.declare_queue(RESULTS_STORE)
    await bus.start()
    try:
        await asyncio.gather(*(bus.publish(message) for message in sent))
        bus.subscribe(route(handler, prefetch=200, inflight_items=1000))

        readings = await held_settles_at(rabbit_url, MIN_PREFETCH + 200)
        assert max(readings) <= MIN_PREFETCH + 200, readings
        assert bus._batches[0].prefetch == 200

        handler.release.set()
        await until(lambda: len(handler.stored) >= len(sent), within=60, what="every message handed over")
        await asyncio.sleep(0.3)
        assert sorted(handler.stored) == sorted(m.runner_id for m in sent)
        assert max(handler.calls) == 200 // 3
        await until_async(lambda: _none_unacked(rabbit_url), within=30, what="every batch acked")
        assert await bus.dead_letter_count() == 0
    finally:
        await bus.stop()


async def test_the_prefetch_narrows_at_once_and_widens_by_doubling() -> None:
    """Weights seen batch after batch → the prefetch asked for: each change is a new consumer, so small
    swings change nothing, a heavy batch narrows it at once, and a lull of single results widens it
    step by step up to the route's prefetch."""
    weighed = route(Holding(), prefetch=1500, inflight_items=3000)
    assert weighed.batch is not None
    consumer = BatchConsumer(
        weighed,
        weighed.batch,
        arguments={},
        delivery_count=lambda redelivered, headers, key: 1,
        after_failure=lambda attempt, key: 0,
        forget_failure=lambda key: None,
        bus_open=lambda: True,
        retry_s=1.0,
        retry_pause_s=0.1,
    )
    heavy = CheckCompletedBatch(region=REGION, items=[completed(i) for i in range(100)])
    light = heartbeat("r1")

    def after(*messages: Any) -> int:
        items = [_Item(message=None, decoded=message) for message in messages]  # type: ignore[arg-type]
        consumer._weigh(items)
        return consumer.prefetch

    assert consumer.prefetch == MIN_PREFETCH  # nothing weighed yet
    assert after(heavy, light) == 3000 // 100
    assert after(light, light) == 30  # 3000 // 75 = 40: not worth a new consumer
    widened = [after(light) for _ in range(30)]
    assert widened[-1] == 1500
    assert len(set(widened)) < 12  # a few doublings, not a change per batch
    assert after(light, heavy) == 30  # a heavy batch narrows it back at once
