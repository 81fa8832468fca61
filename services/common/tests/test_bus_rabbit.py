"""What only a real RabbitMQ can show: durability, persistence, confirms, redelivery and reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    DELIVERY_LIMIT,
    EXCHANGES,
    RESULTS_EXCHANGE,
    RESULTS_STORE,
    ROUTER_DEAD_RUNS,
    RUNNER_HEARTBEAT,
    RUNNER_QUEUE_EXPIRES_MS,
    RUNS_DEAD_LETTER_EXCHANGE,
    QueueSpec,
    router_heartbeats,
    runner_queue,
)
from contracts.v1 import RunCheck, RunnerHeartbeat, decode, encode
from services.common.bus import Delivery, Route
from services.common.bus.rabbit import RabbitBus
from services.common.errors import NotConfirmed
from services.common.tests.test_bus_behaviour import REGION, heartbeat, run_check, until

pytestmark = pytest.mark.rabbit
log = logging.getLogger(__name__)


def vhost_of(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def rabbitmqctl_json(*args: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args, "--formatter", "json"], check=True, capture_output=True, timeout=60
    )
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


@pytest.fixture
async def new_bus(rabbit_url: str) -> AsyncIterator[Callable[..., RabbitBus]]:
    """RabbitMQ buses on a fresh vhost, all stopped after the test."""
    buses: list[RabbitBus] = []

    def make(**options: Any) -> RabbitBus:
        options = {"publish_timeout": 5.0, "stop_timeout": 2.0, **options}
        bus = RabbitBus(rabbit_url, instance="t", **options)
        buses.append(bus)
        return bus

    yield make
    for bus in reversed(buses):
        await bus.stop()


async def _nothing(message: Any, delivery: Delivery) -> None:
    return None


async def test_exchanges_and_queues_are_durable_quorum_with_limits_and_dead_lettering(
    new_bus: Callable[..., RabbitBus], rabbit_url: str
) -> None:
    bus = new_bus()
    bus.subscribe(Route(RESULTS_STORE, {RunnerHeartbeat: _nothing}))
    bus.subscribe(Route(router_heartbeats("t"), {RunnerHeartbeat: _nothing}))
    await bus.start()
    await bus.declare_queue(runner_queue(REGION))
    vhost = vhost_of(rabbit_url)

    exchanges = {
        row["name"]: row
        for row in await asyncio.to_thread(
            rabbitmqctl_json, "list_exchanges", "-p", vhost, "name", "type", "durable"
        )
    }
    for spec in EXCHANGES:
        assert (exchanges[spec.name]["type"], exchanges[spec.name]["durable"]) == (spec.kind, True)

    queues = {
        row["name"]: row
        for row in await asyncio.to_thread(
            rabbitmqctl_json,
            "list_queues",
            "-p",
            vhost,
            "name",
            "durable",
            "exclusive",
            "auto_delete",
            "type",
            "arguments",
        )
    }
    expected: dict[str, tuple[bool, str, dict[str, Any]]] = {
        DEAD_LETTER_QUEUE: (True, "quorum", {"x-delivery-limit": DELIVERY_LIMIT - 1}),
        RESULTS_STORE.name: (
            True,
            "quorum",
            {
                "x-delivery-limit": DELIVERY_LIMIT - 1,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        ),
        runner_queue(REGION).name: (
            True,
            "quorum",
            {
                "x-delivery-limit": DELIVERY_LIMIT - 1,
                "x-dead-letter-exchange": RUNS_DEAD_LETTER_EXCHANGE,
                "x-expires": RUNNER_QUEUE_EXPIRES_MS,
            },
        ),
        router_heartbeats("t").name: (False, "classic", {"x-dead-letter-exchange": DEAD_LETTER_EXCHANGE}),
    }
    for name, (durable, kind, arguments) in expected.items():
        row = queues[name]
        assert (row["durable"], row["type"]) == (durable, kind), name
        assert row["exclusive"] is not durable, name
        declared = {key: value for key, _amqp_type, value in row["arguments"]}
        assert arguments.items() <= declared.items(), (name, declared)


@pytest.mark.parametrize(
    ("message", "expiration", "amqp_expiration"),
    [(heartbeat(), None, None), (run_check(), 30.0, 30.0)],
    ids=["heartbeat", "run-with-expiry"],
)
async def test_published_messages_are_persistent_json_named_by_their_id(
    new_bus: Callable[..., RabbitBus],
    rabbit_url: str,
    message: Any,
    expiration: float | None,
    amqp_expiration: float | None,
) -> None:
    bus = new_bus()
    await bus.start()
    queue = RESULTS_STORE if isinstance(message, RunnerHeartbeat) else runner_queue(REGION)
    await bus.declare_queue(queue)

    await bus.publish(message, expiration=expiration, mandatory=True)

    connection = await aio_pika.connect(rabbit_url)
    async with connection:
        channel = await connection.channel()
        got = await (await channel.get_queue(queue.name)).get(no_ack=True, timeout=5)
    assert got is not None
    assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert got.content_type == "application/json"
    assert got.message_id == str(getattr(message, "run_id", message.message_id))
    assert got.type == message.kind
    assert got.expiration == amqp_expiration
    assert json.loads(got.body)["message_id"] == str(message.message_id)


async def test_publish_returns_only_once_confirmed_and_a_nack_raises(
    new_bus: Callable[..., RabbitBus],
) -> None:
    bus = new_bus()
    await bus.start()
    # a classic queue that refuses its second message: the broker nacks, exactly (quorum limits are soft)
    full_after_one: dict[str, str | int] = {"x-max-length": 1, "x-overflow": "reject-publish"}
    spec = QueueSpec("confirm.test", RESULTS_EXCHANGE, ("confirm.#",), exclusive=True, extra=full_after_one)
    await bus.declare_queue(spec)

    await bus.publish(heartbeat("first"), routing_key="confirm.one")
    assert await bus.queue_depth(spec.name) == 1  # confirmed ⇒ already enqueued, no waiting needed
    with pytest.raises(NotConfirmed):
        await bus.publish(heartbeat("second"), routing_key="confirm.one")
    assert await bus.queue_depth(spec.name) == 1


async def test_a_run_expires_even_when_its_region_has_no_consumer_at_all(
    new_bus: Callable[..., RabbitBus],
) -> None:
    dead: list[tuple[RunCheck, Delivery]] = []

    async def record(message: RunCheck, delivery: Delivery) -> None:
        dead.append((message, delivery))

    bus = new_bus()
    bus.subscribe(Route(ROUTER_DEAD_RUNS, {RunCheck: record}))
    await bus.start()
    await bus.declare_queue(runner_queue(REGION))

    run = run_check()
    await bus.publish(run, expiration=0.2, mandatory=True)

    await until(lambda: len(dead) == 1, within=10, what="the unconsumed run to expire")
    assert dead[0][0] == run
    assert dead[0][1].death_reason == "expired"
    assert dead[0][1].headers["x-first-death-queue"] == runner_queue(REGION).name
    assert await bus.queue_depth(runner_queue(REGION).name) == 0


async def test_unacked_messages_come_back_after_the_consumer_restarts(
    new_bus: Callable[..., RabbitBus],
) -> None:
    hold = asyncio.Event()
    held: list[RunnerHeartbeat] = []

    async def stuck(message: RunnerHeartbeat, delivery: Delivery) -> None:
        held.append(message)
        await hold.wait()

    first = new_bus(stop_timeout=0.5)
    first.subscribe(Route(RESULTS_STORE, {RunnerHeartbeat: stuck}, prefetch=8))
    await first.start()
    sent = [heartbeat(f"r{n}") for n in range(3)]
    for message in sent:
        await first.publish(message)
    await until(lambda: len(held) == len(sent), what="every message in flight")
    stopping = time.monotonic()
    await first.stop()
    assert time.monotonic() - stopping < 0.5 + 3.0  # stuck handlers do not hold stop() past its bound

    got: list[tuple[RunnerHeartbeat, Delivery]] = []

    async def record(message: RunnerHeartbeat, delivery: Delivery) -> None:
        got.append((message, delivery))

    second = new_bus()
    second.subscribe(Route(RESULTS_STORE, {RunnerHeartbeat: record}, prefetch=8))
    await second.start()
    await until(lambda: len(got) == len(sent), what="the unacked messages to come back")
    assert sorted(m.runner_id for m, _ in got) == sorted(m.runner_id for m in sent)
    assert all(d.redelivered and d.delivery_count == 2 for _, d in got)


async def test_consumers_resume_and_publishes_stay_bounded_after_the_connection_is_closed(
    new_bus: Callable[..., RabbitBus], rabbit_url: str
) -> None:
    got: list[str] = []

    async def record(message: RunnerHeartbeat, delivery: Delivery) -> None:
        got.append(message.runner_id)

    publish_timeout = 2.0
    bus = new_bus(publish_timeout=publish_timeout, reconnect_interval=0.5)
    bus.subscribe(Route(RESULTS_STORE, {RunnerHeartbeat: record}, prefetch=8))
    await bus.start()
    await bus.publish(heartbeat("before"))
    await until(lambda: got == ["before"], what="the first message")

    await asyncio.to_thread(
        subprocess.run,
        ["rabbitmqctl", "-q", "close_all_connections", "--vhost", vhost_of(rabbit_url), "test outage"],
        check=True,
        capture_output=True,
        timeout=60,
    )

    failures, slowest = 0, 0.0
    deadline = time.monotonic() + 30
    while True:
        started = time.monotonic()
        try:
            await bus.publish(heartbeat("after"))
            break
        except NotConfirmed:
            failures += 1
            await asyncio.sleep(0.1)
        finally:
            slowest = max(slowest, time.monotonic() - started)
        assert time.monotonic() < deadline, "publishing never recovered"
    assert slowest < publish_timeout + 1.0
    await until(lambda: got == ["before", "after"], within=20, what="the consumer to resume")
    log.info("reconnected publish_failures=%d slowest_publish_s=%.2f", failures, slowest)


async def _raw_aio_pika_rate(url: str, bodies: list[bytes], in_flight: int) -> float:
    """Bare aio-pika on the same queue: persistent publishes with confirms, manual acks (the baseline)."""
    connection = await aio_pika.connect(url)
    async with connection:
        publishing = await connection.channel(publisher_confirms=True)
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=in_flight)
        exchange = await publishing.get_exchange(RESULTS_EXCHANGE)
        queue = await consuming.get_queue(RESULTS_STORE.name)
        consumed = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal consumed
            decode(message.body)
            await message.ack()
            consumed += 1

        await queue.consume(on_message)
        gate = asyncio.Semaphore(in_flight)

        async def send(body: bytes) -> None:
            async with gate:
                await exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), RUNNER_HEARTBEAT
                )

        started = time.perf_counter()
        await asyncio.gather(*(send(body) for body in bodies))
        await until(lambda: consumed == len(bodies), within=60, what="every raw message consumed")
        return len(bodies) / (time.perf_counter() - started)


@pytest.mark.slow
async def test_throughput_of_publish_and_consume(new_bus: Callable[..., RabbitBus], rabbit_url: str) -> None:
    total, in_flight = 5_000, 100
    consumed = 0

    async def count(message: RunnerHeartbeat, delivery: Delivery) -> None:
        nonlocal consumed
        consumed += 1

    bus = new_bus()
    bus.subscribe(Route(RESULTS_STORE, {RunnerHeartbeat: count}, prefetch=in_flight))
    await bus.start()
    messages = [heartbeat(f"r{n}") for n in range(total)]
    gate = asyncio.Semaphore(in_flight)

    async def send(message: RunnerHeartbeat) -> None:
        async with gate:
            await bus.publish(message)

    started = time.perf_counter()
    await asyncio.gather(*(send(message) for message in messages))
    await until(lambda: consumed == total, within=60, what="every message consumed")
    rate = total / (time.perf_counter() - started)
    assert await bus.dead_letter_count() == 0
    await bus.stop()

    baseline = await _raw_aio_pika_rate(rabbit_url, [encode(message) for message in messages], in_flight)
    print(
        f"\nbus publish+consume, {total} persistent confirmed msgs, {in_flight} in flight: "
        f"{rate:.0f} msg/s; bare aio-pika {baseline:.0f} msg/s; ratio {rate / baseline:.2f}"
    )
    assert rate > 200
