"""Batch consumption, run against both adapters (so ``seymour up`` and RabbitMQ behave alike).

A batch route hands many messages to one handler call and acks them together once it returned; what the
per-message path guarantees must still hold item by item: a failed item is redelivered (and in the end
dead-lettered) alone, a malformed or unknown message is dead-lettered alone, and a batch whose handler
never returned (the process stopped or died before the commit) comes back whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from contracts.topology import DELIVERY_LIMIT, RESULTS_EXCHANGE, RESULTS_STORE, RUNNER_HEARTBEAT
from contracts.v1 import RunMissed, RunnerHeartbeat, encode
from services.common.bus import Batch, Delivery, Outcome, Route
from services.common.bus.memory import MemoryBus
from services.common.logs import bound_fields
from services.common.metrics import MESSAGES_DEAD_LETTERED
from services.common.tests import test_bus_behaviour as behaviour
from services.common.tests.test_bus_behaviour import (
    BusFactory,
    Recorder,
    _dead_letters_are,
    heartbeat,
    run_missed,
    until,
    until_async,
)

#: The behaviour suite's fixture: every test here runs on the in-process bus and on RabbitMQ.
new_bus = behaviour.new_bus


class BatchRecorder:
    """A batch handler that remembers every call; items matching ``fail_when`` fail alone."""

    def __init__(self, fail_when: Callable[[Any], bool] | None = None) -> None:
        self.calls: list[list[tuple[Any, Delivery]]] = []
        self.stored: list[Any] = []
        self._fail_when = fail_when

    async def __call__(self, items: Sequence[tuple[Any, Delivery]]) -> list[Outcome]:
        self.calls.append(list(items))
        outcomes: list[Outcome] = []
        for message, _delivery in items:
            if self._fail_when is not None and self._fail_when(message):
                outcomes.append(RuntimeError(f"poison {message.runner_id}"))
            else:
                self.stored.append(message)
                outcomes.append(None)
        return outcomes

    def attempts_of(self, runner_id: str) -> int:
        return sum(1 for call in self.calls for message, _ in call if message.runner_id == runner_id)


def batch_route(handler: Any, *, max_items: int = 50, handlers: dict[type, Any] | None = None) -> Route:
    return Route(
        RESULTS_STORE,
        handlers or {},
        prefetch=4 * max_items,
        batch=Batch(handler, frozenset({RunnerHeartbeat}), max_items=max_items, max_wait_ms=50.0),
    )


async def _publish_all(bus: Any, messages: list[RunnerHeartbeat]) -> None:
    await asyncio.gather(*(bus.publish(message) for message in messages))


async def test_a_backlog_is_handed_over_in_batches_and_each_message_once(new_bus: BusFactory) -> None:
    bus = new_bus()
    recorder = BatchRecorder()
    sent = [heartbeat(f"r{n}") for n in range(300)]
    await bus.declare_queue(RESULTS_STORE)
    await bus.start()
    await _publish_all(bus, sent)  # queued before the consumer exists: a backlog, as after an outage
    bus.subscribe(batch_route(recorder, max_items=50))

    await until(lambda: len(recorder.stored) == len(sent), what="every message stored")
    await asyncio.sleep(0.3)  # nothing comes back: every batch was acked
    assert sorted(m.runner_id for m in recorder.stored) == sorted(m.runner_id for m in sent)
    assert max(len(call) for call in recorder.calls) == 50
    assert len(recorder.calls) < len(sent) / 5
    assert all(not d.redelivered and d.delivery_count == 1 for call in recorder.calls for _, d in call)
    assert await bus.dead_letter_count() == 0


async def test_a_failed_item_is_redelivered_then_dead_lettered_alone(new_bus: BusFactory) -> None:
    bus = new_bus()
    recorder = BatchRecorder(fail_when=lambda message: message.runner_id == "poison")
    bus.subscribe(batch_route(recorder, max_items=20))
    await bus.start()
    sent = (
        [heartbeat(f"r{n}") for n in range(10)]
        + [heartbeat("poison")]
        + [heartbeat(f"s{n}") for n in range(9)]
    )
    await _publish_all(bus, sent)

    await until_async(lambda: _dead_letters_are(bus, 1), what="the poison item to be dead-lettered")
    await until(lambda: len(recorder.stored) == len(sent) - 1, what="the rest of its batch")
    assert recorder.attempts_of("poison") == DELIVERY_LIMIT
    assert all(recorder.attempts_of(m.runner_id) == 1 for m in sent if m.runner_id != "poison")
    poison = [d for call in recorder.calls for m, d in call if m.runner_id == "poison"]
    assert [d.delivery_count for d in poison] == list(range(1, DELIVERY_LIMIT + 1))


@pytest.mark.parametrize(
    "body",
    [b"\x00 not json at all", b'{"kind": "check.exploded", "version": 1}', encode(run_missed())],
    ids=["not-json", "unknown-kind", "no-handler-for-type"],
)
async def test_a_malformed_message_is_dead_lettered_alone_and_its_batch_goes_on(
    new_bus: BusFactory, body: bytes
) -> None:
    bus = new_bus()
    recorder = BatchRecorder()
    await bus.declare_queue(RESULTS_STORE)
    await bus.start()
    before = [heartbeat(f"a{n}") for n in range(5)]
    after = [heartbeat(f"b{n}") for n in range(5)]
    for message in before:
        await bus.publish(message)
    await bus.publish_raw(
        RESULTS_EXCHANGE, RUNNER_HEARTBEAT if b"exploded" in body else "run.missed.v1", body
    )
    for message in after:
        await bus.publish(message)
    bus.subscribe(batch_route(recorder, max_items=50))

    await until(lambda: len(recorder.stored) == 10, what="the good messages around the bad one")
    await until_async(lambda: _dead_letters_are(bus, 1), what="the bad message to be dead-lettered")
    assert len(recorder.calls) == 1  # the bad one was taken out of the batch, not the batch failed
    await asyncio.sleep(0.3)
    assert len(recorder.stored) == 10


async def test_per_message_handlers_of_a_batch_route_still_run(new_bus: BusFactory) -> None:
    bus = new_bus()
    recorder = BatchRecorder()
    missed = Recorder()
    bus.subscribe(batch_route(recorder, handlers={RunMissed: missed}))
    await bus.start()
    beats = [heartbeat(f"r{n}") for n in range(5)]
    miss = run_missed()
    await _publish_all(bus, beats)
    await bus.publish(miss)

    await until(lambda: len(recorder.stored) == 5 and len(missed.got) == 1, what="both kinds handled")
    assert missed.got[0][0] == miss
    await asyncio.sleep(0.3)
    assert len(missed.attempts) == 1
    assert await bus.dead_letter_count() == 0


async def test_a_batch_that_never_returned_comes_back_whole(new_bus: BusFactory) -> None:
    """The process stopped (or died) while its batch was being committed: nothing of it was acked, so the
    next consumer gets every message again, marked redelivered."""
    first = new_bus()
    hold = asyncio.Event()
    seen: list[Any] = []

    async def stuck(items: Sequence[tuple[Any, Delivery]]) -> list[Outcome]:
        seen.extend(message for message, _ in items)
        await hold.wait()  # the commit never finishes
        return [None for _ in items]

    first.subscribe(batch_route(stuck, max_items=50))
    await first.start()
    sent = [heartbeat(f"r{n}") for n in range(20)]
    await _publish_all(first, sent)
    await until(lambda: len(seen) == len(sent), what="the batch in the handler")
    stop_timeout = 0.5
    if not isinstance(first, MemoryBus):
        first._stop_timeout = stop_timeout
    await first.stop()

    recorder = BatchRecorder()
    if isinstance(first, MemoryBus):
        second: Any = first
        second._routes.clear()
    else:
        second = new_bus()
    second.subscribe(batch_route(recorder, max_items=50))
    await second.start()
    await until(lambda: len(recorder.stored) == len(sent), what="the unacked batch to come back")
    assert sorted(m.runner_id for m in recorder.stored) == sorted(m.runner_id for m in sent)
    assert all(d.redelivered and d.delivery_count == 2 for call in recorder.calls for _, d in call)


async def test_a_failed_item_is_logged_with_its_run_and_counted(new_bus: BusFactory) -> None:
    bus = new_bus()
    named: list[dict[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("handler failed"):
                named.append(bound_fields())

    keeper = Keep()
    logging.getLogger("services.common.bus").addHandler(keeper)
    try:
        miss = run_missed()
        calls = 0

        async def handler(items: Sequence[tuple[Any, Delivery]]) -> list[Outcome]:
            nonlocal calls
            calls += 1
            return [RuntimeError("no") for _ in items]

        route = Route(
            RESULTS_STORE,
            {},
            prefetch=8,
            batch=Batch(handler, frozenset({RunMissed}), max_items=4, max_wait_ms=10),
        )
        before = MESSAGES_DEAD_LETTERED.labels(RESULTS_STORE.name, "delivery_limit")._value.get()
        bus.subscribe(route)
        await bus.start()
        await bus.publish(miss)
        await until_async(lambda: _dead_letters_are(bus, 1), what="the failing item dead-lettered")
        after = MESSAGES_DEAD_LETTERED.labels(RESULTS_STORE.name, "delivery_limit")._value.get()
    finally:
        logging.getLogger("services.common.bus").removeHandler(keeper)
    assert calls == DELIVERY_LIMIT
    assert after - before == 1
    assert len(named) == DELIVERY_LIMIT
    assert all(fields.get("run_id") == str(miss.run_id) for fields in named)
