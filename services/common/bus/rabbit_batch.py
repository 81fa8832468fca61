"""Batch consumption on RabbitMQ: one handler call and one ``basic.ack(multiple=True)`` per batch.

Why not FastStream here: a drain after an outage (``bench/drain.py``) spent most of the results
process's CPU in the per-message consume path — FastStream's consume machinery, a task and a future per
message, one ``basic.ack`` frame per message. This consumer sits on aio-pika's robust queue directly (so
reconnection, QoS and consumer recovery stay aio-pika's), only appends each delivery to a buffer, and a
collector hands the buffer over in batches. FastStream keeps every other consumer and the AsyncAPI
document.

Guarantees, the same as the per-message path in :mod:`.rabbit`:

* A batch is acked only after its handler returned, i.e. after its effect is durable; batches are
  settled in delivery order, so a ``multiple`` ack never covers a delivery of a batch still running.
  Failed items are nacked or rejected one by one *before* the batch's ``multiple`` ack.
* Oversized, undecodable, unknown-kind and wrong-sender messages are rejected alone (dead-lettered,
  counted as before); the rest of their batch goes on.
* An item the handler reports as failed is nacked with requeue (the quorum queue's delivery limit, or
  the adapter's own count on an exclusive queue, dead-letters it in the end) and counted as a handler
  failure; its batch is acked.
* Acks go to the channel the delivery came on; after a reconnect the old deliveries come back anyway,
  so a settle on a closed channel is skipped. A batch that could not be settled (cancelled at stop)
  makes later batches on that channel ack one delivery at a time, never ``multiple``.
* :meth:`BatchConsumer.stop` cancels the consumer, finishes the batches already collected (bounded),
  then closes the channel, which hands every unsettled delivery back to the broker.

Prefetch by items (``Batch.inflight_items``): RabbitMQ's prefetch counts messages (it does not implement
``prefetch_size``), and a runner's message may carry a hundred results, so a prefetch sized for single
results let a drain hold a hundred times the results it was meant to. The consumer weighs every decoded
message (``Batch.weight``) and changes its prefetch on the fly to ``inflight_items // heaviest``
messages, between ``MIN_PREFETCH`` and the route's ``prefetch``:

* ``heaviest`` is the heaviest message of the latest batch, or the previous estimate times ``DECAY``,
  whichever is more, so a lull of single results among batches widens the prefetch only gradually (a
  batch that then arrives meets a prefetch at most ``1 / DECAY`` too wide, for one batch);
* the consumer starts at ``MIN_PREFETCH`` (it knows nothing of the messages yet) and single results
  reach the route's whole ``prefetch`` after the first batch;
* batches are cut at a ``depth + 1``-th of the prefetch (at most ``max_items`` messages), so ``depth``
  batches in flight and the next one arriving still fit in it: the pipeline of the single-result case,
  with fewer, heavier messages;
* a per-consumer ``basic.qos`` binds only consumers started after it (a live consumer keeps the prefetch
  it started with; a channel-wide one quorum queues refuse), so a change sets the QoS, consumes again
  and cancels the old consumer (aio-pika's robust channel restores the latest QoS and the new consumer
  after a reconnect). Until what the old consumer took is settled, both count: at a change the consumer
  may hold the old prefetch's messages and the new one's. So the prefetch narrows only once it is a
  quarter too wide, and widens only to double (or to the route's ``prefetch``): a drain of runners'
  batches of every size (1,909 messages) made ~90 changes with a 25 % band both ways, ~20 this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aiormq.exceptions import AMQPError

from contracts.topology import DELIVERY_LIMIT, MAX_MESSAGE_BYTES
from contracts.v1 import AnyMessage, decode
from services.common.bus.protocol import Batch, Delivery, Outcome, Route
from services.common.bus.senders import refusal
from services.common.errors import BusClosed, NotConfirmed
from services.common.logs import bind as bind_log_subject
from services.common.metrics import (
    HANDLER_FAILURES,
    MESSAGES_CONSUMED,
    MESSAGES_DEAD_LETTERED,
    MESSAGES_REDELIVERED,
    METRICS,
)

log = logging.getLogger(__name__)

ACK: Final = 0
NACK: Final = 1  # requeue: redelivered, dead-lettered by the delivery limit in the end
REJECT: Final = 2  # no requeue: dead-lettered now

#: The fewest messages the consumer holds unacked, however heavy they are (one per batch in flight and
#: the next), and the share of the heaviest weight seen that the next batch still remembers.
MIN_PREFETCH: Final = 4
DECAY: Final = 0.75

#: ``(queue spec is exclusive, redelivered, headers, body hash) → delivery count`` and the settlement
#: after a failure, both owned by :class:`services.common.bus.rabbit.RabbitBus` (its classic-queue counts).
DeliveryCount = Callable[[bool | None, Mapping[str, Any], bytes], int]
AfterFailure = Callable[[int, bytes], int]


@dataclass(slots=True)
class _Item:
    """One delivery of a batch and what will be done with it."""

    message: AbstractIncomingMessage
    action: int = ACK
    decoded: AnyMessage | None = None
    delivery: Delivery | None = None
    key: bytes = b""


def death_reason(headers: Mapping[str, Any]) -> str | None:
    """Why a dead-lettered message died the first time (``expired``, ``rejected``, ``delivery_limit``)."""
    first = headers.get("x-first-death-reason")
    if first is not None:
        return first.decode() if isinstance(first, bytes) else str(first)
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[-1], Mapping):
        reason = deaths[-1].get("reason")
        return None if reason is None else str(reason)
    return None


class BatchConsumer:
    """Consumes one route in batches on its own robust channel (its own prefetch)."""

    def __init__(
        self,
        route: Route,
        batch: Batch,
        *,
        arguments: dict[str, Any],
        delivery_count: DeliveryCount,
        after_failure: AfterFailure,
        forget_failure: Callable[[bytes], object],
        bus_open: Callable[[], bool],
        retry_s: float,
        retry_pause_s: float,
    ) -> None:
        self._route = route
        self._batch = batch
        self._queue_name = route.queue.name
        self._arguments = arguments
        self._delivery_count = delivery_count
        self._after_failure = after_failure
        self._forget_failure = forget_failure
        self._bus_open = bus_open
        self._retry_s = retry_s
        self._retry_pause_s = retry_pause_s
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._buffer: list[AbstractIncomingMessage] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, batch.depth))
        self._collector: asyncio.Task[None] | None = None
        self._windows: set[asyncio.Task[None]] = set()
        #: Completes (``True`` if settled) when the latest dispatched batch has been settled.
        self._previous: asyncio.Future[bool] | None = None
        self._closing = False
        #: The prefetch (messages) the consumer wants, the one its channel has, and batches' size in
        #: messages; fixed at the route's unless ``batch.inflight_items`` is set.
        adaptive = batch.inflight_items is not None
        self._prefetch = min(route.prefetch, MIN_PREFETCH) if adaptive else route.prefetch
        self._applied = self._prefetch
        self._cap = self._cap_of(self._prefetch) if adaptive else batch.max_items
        self._heaviest: float | None = None
        self._qos: asyncio.Task[None] | None = None

    @property
    def prefetch(self) -> int:
        """How many messages the consumer asks the broker to hold for it unacked (its QoS)."""
        return self._prefetch

    def _cap_of(self, prefetch: int) -> int:
        return max(1, min(self._batch.max_items, prefetch // (self._batch.depth + 1)))

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Open the channel, declare and bind the queue (restored on reconnect), start consuming."""
        spec = self._route.queue
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(
            spec.name,
            durable=not spec.exclusive,
            exclusive=spec.exclusive,
            auto_delete=spec.exclusive,
            arguments=self._arguments,
        )
        for key in spec.binding_keys:
            await queue.bind(spec.exchange, routing_key=key)
        self._channel, self._queue = channel, queue
        self._collector = asyncio.create_task(self._collect(), name=f"bus-batches-{spec.name}")
        self._tag = await queue.consume(self._on_message)

    async def stop(self, within: float) -> None:
        """Stop taking deliveries, finish the collected ones within ``within`` s, hand back the rest."""
        self._closing = True
        if self._qos is not None:
            self._qos.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._qos
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._tag), within)
        self._wake.set()
        self._full.set()
        pending = {task for task in (self._collector, *self._windows) if task is not None}
        if pending:
            _done, late = await asyncio.wait(pending, timeout=within)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        channel, self._channel, self._queue = self._channel, None, None
        if channel is not None:
            with contextlib.suppress(Exception):
                await channel.close()

    # -- collecting ----------------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika's consumer callback: buffer the delivery; the collector takes it from there."""
        buffer = self._buffer
        buffer.append(message)
        if len(buffer) == 1:
            self._wake.set()
        if len(buffer) >= self._cap:
            self._full.set()

    async def _collect(self) -> None:
        """Cut the buffer into batches of up to ``max_items`` (fewer when the prefetch counts items),
        each ``max_wait_ms`` after its first."""
        batch = self._batch
        wait_s = batch.max_wait_ms / 1000
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(self._buffer) < self._cap and not self._closing:
                self._full.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), wait_s)
            await self._slots.acquire()
            cap = self._cap
            window = self._buffer[:cap]
            del self._buffer[:cap]
            previous = self._previous
            settled: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._previous = settled
            task = asyncio.create_task(self._process(window, previous, settled))
            self._windows.add(task)
            task.add_done_callback(self._windows.discard)

    # -- one batch -----------------------------------------------------------------------------------

    async def _process(
        self,
        window: list[AbstractIncomingMessage],
        previous: asyncio.Future[bool] | None,
        settled: asyncio.Future[bool],
    ) -> None:
        done = False
        try:
            items = self._prepare(window)
            self._weigh(items)
            await self._run_handlers(items)
            in_order = True
            if previous is not None:
                in_order = await asyncio.shield(previous)
            await self._settle(items, multiple=in_order)
            done = True
        finally:
            bind_log_subject(None)
            if not settled.done():
                settled.set_result(done)
            self._slots.release()

    def _prepare(self, window: list[AbstractIncomingMessage]) -> list[_Item]:
        """Decode and check every delivery; refuse the ones that cannot be believed or handled."""
        route, batch, queue = self._route, self._batch, self._queue_name
        exclusive = route.queue.exclusive
        items: list[_Item] = []
        redelivered = 0
        for message in window:
            item = _Item(message)
            items.append(item)
            body = message.body
            if len(body) > MAX_MESSAGE_BYTES:
                self._refuse(item, None, f"{len(body)} bytes > {MAX_MESSAGE_BYTES}", "too_large")
                continue
            try:
                decoded: AnyMessage = decode(body)
            except Exception as exc:
                bind_log_subject(None)
                log.warning("dead-lettering undecodable message queue=%s error=%s", queue, str(exc)[:300])
                MESSAGES_DEAD_LETTERED.labels(queue, "malformed").inc()
                item.action = REJECT
                continue
            why = refusal(decoded, message.user_id)
            if why is not None:
                self._refuse(item, decoded, why, "sender")
                continue
            kind = type(decoded)
            if kind not in batch.types and kind not in route.handlers:
                bind_log_subject(decoded)
                log.warning("dead-lettering message with no handler queue=%s kind=%s", queue, decoded.kind)
                MESSAGES_DEAD_LETTERED.labels(queue, "no_handler").inc()
                item.action = REJECT
                continue
            headers: dict[str, Any] = dict(message.headers) if message.headers else {}
            if exclusive:
                item.key = hashlib.blake2b(body, digest_size=16).digest()
            if message.redelivered:
                redelivered += 1
            item.decoded = decoded
            item.delivery = Delivery(
                routing_key=message.routing_key or "",
                redelivered=bool(message.redelivered),
                delivery_count=self._delivery_count(message.redelivered, headers, item.key),
                death_reason=death_reason(headers) if headers else None,
                headers=headers,
            )
        if redelivered:
            MESSAGES_REDELIVERED.labels(queue).inc(redelivered)
        return items

    def _weigh(self, items: list[_Item]) -> None:
        """Fit the prefetch to the heaviest message of this batch (see the module's docstring)."""
        inflight = self._batch.inflight_items
        if inflight is None:
            return
        weights = [self._batch.weight(item.decoded) for item in items if item.decoded is not None]
        if not weights:
            return
        heaviest = float(max(1, *weights))
        if self._heaviest is not None:
            heaviest = max(heaviest, self._heaviest * DECAY)
        self._heaviest = heaviest
        prefetch = min(self._route.prefetch, max(MIN_PREFETCH, int(inflight / heaviest)))
        current = self._prefetch
        if not (prefetch * 5 < current * 4 or prefetch >= min(2 * current, self._route.prefetch)):
            return  # each change is a new consumer: narrow past a quarter over, widen to double
        if prefetch == current:
            return
        self._prefetch = prefetch
        self._cap = self._cap_of(prefetch)
        if len(self._buffer) >= self._cap:
            self._full.set()
        if self._qos is None or self._qos.done():
            self._qos = asyncio.create_task(self._apply_qos(), name=f"bus-qos-{self._queue_name}")

    async def _apply_qos(self) -> None:
        """Give the broker the wanted prefetch: a per-consumer ``basic.qos`` binds only consumers started
        after it (RabbitMQ; a channel-wide one quorum queues refuse), so the consumer is started again
        under the new prefetch, then the old one cancelled (in that order: a failure in between leaves two
        consumers, never none). Deliveries the old one took stay unacked on the channel and are settled
        as usual. In its own task: during a reconnect the channel is waited for, and a batch must not
        wait with it."""
        while self._applied != self._prefetch and not self._closing:
            channel, queue, wanted = self._channel, self._queue, self._prefetch
            if channel is None or queue is None or self._tag is None:
                return
            try:
                await channel.set_qos(prefetch_count=wanted)
                old, self._tag = self._tag, await queue.consume(self._on_message)
                await queue.cancel(old)
            except (AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("could not change prefetch queue=%s error=%r", self._queue_name, exc)
                return
            self._applied = wanted
            log.debug("prefetch queue=%s messages=%d", self._queue_name, wanted)

    def _refuse(self, item: _Item, decoded: AnyMessage | None, why: str, reason: str) -> None:
        """Dead-letter a message home must not believe or parse, and count it (as the per-message path)."""
        bind_log_subject(decoded)
        log.warning(
            "dead-lettering refused message queue=%s reason=%s user_id=%s why=%s",
            self._queue_name,
            reason,
            item.message.user_id,
            why,
        )
        METRICS.inc("seymour_bus_refused_total", queue=self._queue_name, reason=reason)
        MESSAGES_DEAD_LETTERED.labels(self._queue_name, reason).inc()
        item.action = REJECT

    async def _run_handlers(self, items: list[_Item]) -> None:
        """One call of the batch handler for the batched types, per-message handlers beside it; mark
        every failed item for redelivery (or dead-lettering, at the limit)."""
        batched: list[_Item] = []
        singles: list[_Item] = []
        for item in items:
            if item.decoded is None:
                continue
            (batched if type(item.decoded) in self._batch.types else singles).append(item)
        work: list[Any] = []
        if batched:
            work.append(self._call_batch(batched))
        work.extend(self._call_single(item) for item in singles)
        outcomes: list[Any] = await asyncio.gather(*work, return_exceptions=True) if work else []
        if batched:
            first = outcomes.pop(0)
            if isinstance(first, asyncio.CancelledError):
                raise first
            if isinstance(first, BaseException):
                # The whole call failed (not one item): one line for the batch, every item redelivered.
                bind_log_subject(None)
                log.error(
                    "batch handler failed queue=%s items=%d", self._queue_name, len(batched), exc_info=first
                )
                for item in batched:
                    self._fail(item, first, log_it=False)
            else:
                for item, out in zip(batched, first, strict=True):
                    if out is not None:
                        self._fail(item, out, log_it=True)
        for item, out in zip(singles, outcomes, strict=True):
            if isinstance(out, asyncio.CancelledError):
                raise out
            if out is not None:
                self._fail(item, out, log_it=True)
        consumed = Counter(
            item.decoded.kind for item in items if item.action == ACK and item.decoded is not None
        )
        for kind, count in consumed.items():
            MESSAGES_CONSUMED.labels(self._queue_name, kind).inc(count)

    async def _call_batch(self, items: list[_Item]) -> Sequence[Outcome]:
        """The batch handler, run again in place while only *our* publishing fails (link coming back)."""
        pairs = [(item.decoded, item.delivery) for item in items if item.delivery is not None]
        deadline = time.monotonic() + self._retry_s
        while True:
            try:
                outcomes = await self._batch.handler(pairs)
            except (NotConfirmed, BusClosed) as exc:
                if time.monotonic() >= deadline or not self._bus_open():
                    raise
                log.warning(
                    "batch handler could not publish, retrying queue=%s error=%s", self._queue_name, exc
                )
                await asyncio.sleep(self._retry_pause_s)
                continue
            if len(outcomes) != len(pairs):
                raise RuntimeError(f"batch handler returned {len(outcomes)} outcomes for {len(pairs)} items")
            return outcomes

    async def _call_single(self, item: _Item) -> None:
        """A per-message handler of the route, in its own task (its log lines name its run)."""
        assert item.decoded is not None
        assert item.delivery is not None
        bind_log_subject(item.decoded)
        handler = self._route.handlers[type(item.decoded)]
        deadline = time.monotonic() + self._retry_s
        while True:
            try:
                await handler(item.decoded, item.delivery)
                return
            except (NotConfirmed, BusClosed) as exc:
                if time.monotonic() >= deadline or not self._bus_open():
                    raise
                log.warning("handler could not publish, retrying queue=%s error=%s", self._queue_name, exc)
                await asyncio.sleep(self._retry_pause_s)

    def _fail(self, item: _Item, exc: BaseException, *, log_it: bool) -> None:
        assert item.decoded is not None
        assert item.delivery is not None
        attempt = item.delivery.delivery_count
        if log_it:
            bind_log_subject(item.decoded)
            log.error(
                "handler failed queue=%s kind=%s attempt=%d",
                self._queue_name,
                item.decoded.kind,
                attempt,
                exc_info=exc,
            )
        HANDLER_FAILURES.labels(self._queue_name).inc()
        if attempt >= DELIVERY_LIMIT:
            MESSAGES_DEAD_LETTERED.labels(self._queue_name, "delivery_limit").inc()
        item.action = self._after_failure(attempt, item.key) if self._route.queue.exclusive else NACK

    async def _settle(self, items: list[_Item], *, multiple: bool) -> None:
        """Nack/reject the failed deliveries one by one, then ack the rest with one frame per channel."""
        last_ack: dict[int, tuple[Any, int]] = {}
        singles: list[tuple[Any, int]] = []
        for item in items:
            message = item.message
            try:
                channel = message.channel
            except Exception:  # the channel it came on is closed: the broker has it back already
                continue
            tag = message.delivery_tag
            if tag is None:
                continue
            if item.action == ACK:
                if item.key:
                    self._forget_failure(item.key)
                if multiple:
                    last_ack[id(channel)] = (channel, tag)
                else:
                    singles.append((channel, tag))
                continue
            try:
                if item.action == REJECT:
                    await channel.basic_reject(tag, requeue=False)
                else:
                    await channel.basic_nack(tag, requeue=True)
            except (AMQPError, ConnectionError, RuntimeError) as exc:
                log.warning("could not settle message queue=%s error=%r (redelivered)", self._queue_name, exc)
        try:
            for channel, tag in last_ack.values():
                await channel.basic_ack(tag, multiple=True)
            for channel, tag in singles:
                await channel.basic_ack(tag)
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            log.warning(
                "could not ack batch queue=%s error=%r (it will be redelivered)", self._queue_name, exc
            )


__all__ = ["ACK", "NACK", "REJECT", "BatchConsumer", "death_reason"]
