"""In-process bus: the RabbitMQ topology in miniature, for ``seymour up`` and tests.

Exchanges route by topic/direct/fanout rules; each queue is an ``asyncio.Queue`` of JSON bytes with
per-message expiry, a delivery count, and a dead-letter exchange. Handlers run concurrently up to the
route's prefetch. A message is acked when its handler returns; if the handler raises it is redelivered
up to ``DELIVERY_LIMIT`` times and then dead-lettered, exactly like the RabbitMQ adapter.

A route with a :class:`~services.common.bus.protocol.Batch` is consumed as on RabbitMQ: up to
``max_items`` messages (``max_wait_ms`` after the first) in one handler call, ``depth`` batches at once;
malformed and unknown messages are dead-lettered alone, an item the handler reports failed is
redelivered alone (dead-lettered at the limit), and the rest of its batch counts as acked.

A consumer is handed the object that was published, not one decoded from its bytes: the contracts are
frozen models, validated when made, and decoding every message again costs ~0.12 ms of CPU per run (a
``RunCheck`` carries a whole ``CheckSpec``: 52 µs to decode; a slot's ``CheckDue`` about as much; its
result 9 µs per consumer), ~2.5 % of what ``seymour up`` spends per run (4.9 ms). The bytes are
still made at publish (a message that cannot go on a wire fails there, as on RabbitMQ), and are what is
decoded for ``publish_raw``, dead letters and tools. Tests run checked (``SEYMOUR_MEMORY_BUS_CHECKED=1``,
set by the test configuration): every consumer then gets the decoded message, as from a broker, and a
published object that differs from its wire form is logged as an error, so a message built unvalidated
(``model_copy(update=...)``) cannot behave one way in process and another way over RabbitMQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.topology import DEAD_LETTERS, DELIVERY_LIMIT, EXCHANGES, QueueSpec
from contracts.v1 import AnyMessage, decode, encode
from services.common.bus.protocol import Batch, Delivery, Outcome, Route, address_of
from services.common.errors import MalformedMessage, Unroutable
from services.common.logs import bind as bind_log_subject
from services.common.metrics import (
    HANDLER_FAILURES,
    MESSAGES_CONSUMED,
    MESSAGES_DEAD_LETTERED,
    MESSAGES_PUBLISHED,
    MESSAGES_REDELIVERED,
)

log = logging.getLogger(__name__)


#: Decode every message as a broker's consumer would and compare it with the published object (tests).
CHECKED_ENV = "SEYMOUR_MEMORY_BUS_CHECKED"
#: How many published objects differed from their wire form in this process (checked buses only): the
#: test configuration fails a test that makes one.
DIVERGED: list[str] = []


@dataclass
class _Envelope:
    body: bytes
    routing_key: str
    expires_at: float | None = None
    delivery_count: int = 0
    death_reason: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)
    #: The published object, handed to consumers as it is (``None`` for raw bytes).
    message: AnyMessage | None = None


@dataclass
class _Queue:
    spec: QueueSpec
    items: asyncio.Queue[_Envelope] = field(default_factory=asyncio.Queue)
    kind: str = "topic"

    def binds(self, routing_key: str) -> bool:
        if self.kind == "fanout":
            return True
        if self.kind == "direct":
            return routing_key in self.spec.binding_keys
        return any(topic_matches(key, routing_key) for key in self.spec.binding_keys)


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    return _match(binding_key.split("."), routing_key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _match(rest, words[1:])


class MemoryBus:
    """The in-process adapter of :class:`services.common.bus.Bus`."""

    def __init__(self, *, checked: bool | None = None) -> None:
        self._checked = os.environ.get(CHECKED_ENV) == "1" if checked is None else checked
        self._kinds = {spec.name: spec.kind for spec in EXCHANGES}
        self._queues: dict[str, _Queue] = {}
        self._routes: list[Route] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._ensure_queue(DEAD_LETTERS)

    def _ensure_queue(self, spec: QueueSpec) -> _Queue:
        queue = self._queues.get(spec.name)
        if queue is None:
            queue = _Queue(spec, kind=self._kinds.get(spec.exchange, "topic"))
            self._queues[spec.name] = queue
        return queue

    async def declare_queue(self, queue: QueueSpec) -> None:
        """Declare a queue (idempotent)."""
        self._ensure_queue(queue)

    def subscribe(self, route: Route) -> None:
        """Register a consumer; starts at once if the bus is running."""
        self._ensure_queue(route.queue)
        self._routes.append(route)
        if self._running:
            self._start_route(route)

    async def start(self) -> None:
        """Start every registered consumer."""
        self._running = True
        for route in self._routes:
            self._start_route(route)
        self._tasks.append(asyncio.create_task(self._expire_forever(), name="memory-bus-expiry"))

    async def _expire_forever(self, every: float = 0.25) -> None:
        """Dead-letter expired messages that no consumer takes, as RabbitMQ does with per-message TTLs."""
        while True:
            await asyncio.sleep(every)
            self.expire_now()

    def expire_now(self) -> int:
        """Move every expired message waiting in any queue to its dead-letter exchange; returns how many."""
        now = time.monotonic()
        moved = 0
        for queue in list(self._queues.values()):
            waiting = queue.items._queue  # type: ignore[attr-defined]
            if not any(e.expires_at is not None and now > e.expires_at for e in waiting):
                continue
            keep = [e for e in waiting if e.expires_at is None or now <= e.expires_at]
            gone = [e for e in waiting if e.expires_at is not None and now > e.expires_at]
            waiting.clear()
            waiting.extend(keep)
            for envelope in gone:
                self._dead_letter(queue, envelope, "expired")
            moved += len(gone)
        return moved

    def _start_route(self, route: Route) -> None:
        queue = self._queues[route.queue.name]
        if route.batch is not None:
            for _ in range(max(1, route.batch.depth)):
                self._tasks.append(asyncio.create_task(self._consume_batches(queue, route, route.batch)))
            return
        for _ in range(route.prefetch):
            self._tasks.append(asyncio.create_task(self._consume(queue, route)))

    async def stop(self) -> None:
        """Cancel consumers (messages being handled are redelivered to the next start)."""
        self._running = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def publish(
        self,
        message: AnyMessage,
        *,
        routing_key: str | None = None,
        expiration: float | None = None,
        mandatory: bool = False,
    ) -> None:
        """Route a message to every bound queue; raise :class:`Unroutable` if mandatory and none."""
        exchange, key = address_of(message, routing_key)
        body = encode(message)
        expires_at = time.monotonic() + expiration if expiration is not None else None
        if not self._route(exchange, key, body, expires_at, message) and mandatory:
            raise Unroutable(f"no queue bound to {exchange} for {key!r}")
        MESSAGES_PUBLISHED.labels(exchange, message.kind).inc()

    async def publish_raw(self, exchange: str, routing_key: str, body: bytes) -> None:
        """Publish bytes as they are (tests use it to send malformed messages)."""
        self._route(exchange, routing_key, body, None)

    def _route(
        self,
        exchange: str,
        key: str,
        body: bytes,
        expires_at: float | None,
        message: AnyMessage | None = None,
    ) -> bool:
        delivered = False
        for queue in self._queues.values():
            if queue.spec.exchange == exchange and queue.binds(key):
                queue.items.put_nowait(_Envelope(body, key, expires_at, message=message))
                delivered = True
        return delivered

    async def _consume(self, queue: _Queue, route: Route) -> None:
        while True:
            envelope = await queue.items.get()
            if envelope.expires_at is not None and time.monotonic() > envelope.expires_at:
                self._dead_letter(queue, envelope, "expired")
                continue
            envelope.delivery_count += 1
            try:
                message = self._message_of(envelope)
                handler = route.handlers.get(type(message))
                if handler is None:
                    raise MalformedMessage(f"no handler for {type(message).__name__} on {queue.spec.name}")
            except MalformedMessage as exc:
                bind_log_subject(None)
                log.warning("dead-lettering malformed message queue=%s error=%s", queue.spec.name, exc)
                self._dead_letter(queue, envelope, "rejected")
                continue
            bind_log_subject(message)  # the run this consumer's next log lines are about
            delivery = _delivery_of(envelope)
            if delivery.redelivered:
                MESSAGES_REDELIVERED.labels(queue.spec.name).inc()
            try:
                await handler(message, delivery)
            except asyncio.CancelledError:
                queue.items.put_nowait(envelope)
                raise
            except Exception:
                log.exception("handler failed queue=%s attempt=%d", queue.spec.name, envelope.delivery_count)
                HANDLER_FAILURES.labels(queue.spec.name).inc()
                if envelope.delivery_count >= DELIVERY_LIMIT:
                    self._dead_letter(queue, envelope, "delivery_limit")
                else:
                    queue.items.put_nowait(envelope)
            else:
                MESSAGES_CONSUMED.labels(queue.spec.name, message.kind).inc()

    async def _consume_batches(self, queue: _Queue, route: Route, batch: Batch) -> None:
        while True:
            window = await self._collect(queue, batch)
            await self._handle_window(queue, route, batch, window)

    @staticmethod
    async def _collect(queue: _Queue, batch: Batch) -> list[_Envelope]:
        """The next batch: the first envelope, then whatever arrives within ``max_wait_ms`` (up to max)."""
        window = [await queue.items.get()]
        deadline = time.monotonic() + batch.max_wait_ms / 1000
        try:
            while len(window) < batch.max_items:
                try:
                    window.append(queue.items.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                getter = asyncio.ensure_future(queue.items.get())
                await asyncio.wait({getter}, timeout=remaining)
                if not getter.done():
                    getter.cancel()
                    await asyncio.wait({getter})
                if getter.cancelled():
                    break
                window.append(getter.result())
        except asyncio.CancelledError:
            for envelope in window:
                queue.items.put_nowait(envelope)
            raise
        return window

    async def _handle_window(
        self, queue: _Queue, route: Route, batch: Batch, window: list[_Envelope]
    ) -> None:
        name = queue.spec.name
        items: list[tuple[_Envelope, AnyMessage, Delivery]] = []
        now = time.monotonic()
        for envelope in window:
            if envelope.expires_at is not None and now > envelope.expires_at:
                self._dead_letter(queue, envelope, "expired")
                continue
            envelope.delivery_count += 1
            try:
                message = self._message_of(envelope)
                if not route.accepts(type(message)):
                    raise MalformedMessage(f"no handler for {type(message).__name__} on {name}")
            except MalformedMessage as exc:
                bind_log_subject(None)
                log.warning("dead-lettering malformed message queue=%s error=%s", name, exc)
                self._dead_letter(queue, envelope, "rejected")
                continue
            delivery = _delivery_of(envelope)
            if delivery.redelivered:
                MESSAGES_REDELIVERED.labels(name).inc()
            items.append((envelope, message, delivery))
        batched = [item for item in items if type(item[1]) in batch.types]
        singles = [item for item in items if type(item[1]) not in batch.types]
        work: list[Any] = []
        if batched:
            work.append(self._call_batch(batch, [(message, delivery) for _, message, delivery in batched]))
        work.extend(self._call_single(route, message, delivery) for _, message, delivery in singles)
        try:
            results: list[Any] = list(await asyncio.gather(*work, return_exceptions=True))
        except asyncio.CancelledError:
            for envelope, _, _ in items:
                queue.items.put_nowait(envelope)
            raise
        outcomes: list[Outcome] = []
        whole_failed = False  # the batch call itself raised: logged once, not once per item
        if batched:
            first = results.pop(0)
            if isinstance(first, BaseException):
                bind_log_subject(None)
                log.error("batch handler failed queue=%s items=%d", name, len(batched), exc_info=first)
                outcomes.extend(first for _ in batched)
                whole_failed = True
            else:
                outcomes.extend(first)
        outcomes.extend(results)
        for index, ((envelope, message, _delivery), out) in enumerate(
            zip(batched + singles, outcomes, strict=True)
        ):
            if isinstance(out, asyncio.CancelledError):
                raise out
            if out is None:
                MESSAGES_CONSUMED.labels(name, message.kind).inc()
                continue
            if not (whole_failed and index < len(batched)):
                bind_log_subject(message)
                log.error("handler failed queue=%s attempt=%d", name, envelope.delivery_count, exc_info=out)
            HANDLER_FAILURES.labels(name).inc()
            if envelope.delivery_count >= DELIVERY_LIMIT:
                self._dead_letter(queue, envelope, "delivery_limit")
            else:
                queue.items.put_nowait(envelope)
        bind_log_subject(None)

    @staticmethod
    async def _call_batch(batch: Batch, pairs: list[tuple[AnyMessage, Delivery]]) -> Sequence[Outcome]:
        outcomes = await batch.handler(pairs)
        if len(outcomes) != len(pairs):
            raise RuntimeError(f"batch handler returned {len(outcomes)} outcomes for {len(pairs)} items")
        return outcomes

    @staticmethod
    async def _call_single(route: Route, message: AnyMessage, delivery: Delivery) -> None:
        bind_log_subject(message)  # its own task: the lines it writes name its run
        await route.handlers[type(message)](message, delivery)

    def _message_of(self, envelope: _Envelope) -> AnyMessage:
        """What the consumer gets: the published object, or (raw bytes, or checked) the decoded one."""
        if envelope.message is None:
            return self._decode(envelope.body)
        if not self._checked:
            return envelope.message
        decoded = self._decode(envelope.body)
        if decoded != envelope.message:
            DIVERGED.append(envelope.message.kind)
            log.error(
                "a published %s differs from its wire form: a consumer over RabbitMQ gets %r, not %r",
                envelope.message.kind,
                decoded,
                envelope.message,
            )
        return decoded

    @staticmethod
    def _decode(body: bytes) -> AnyMessage:
        try:
            return decode(body)
        except Exception as exc:
            raise MalformedMessage(str(exc)[:500]) from exc

    def _dead_letter(self, queue: _Queue, envelope: _Envelope, reason: str) -> None:
        dlx = queue.spec.dead_letter_exchange
        if dlx == DEAD_LETTERS.exchange:
            MESSAGES_DEAD_LETTERED.labels(queue.spec.name, reason).inc()
        if not dlx:
            log.error("dropping dead letter with no dead-letter exchange queue=%s", queue.spec.name)
            return
        dead = _Envelope(
            envelope.body,
            envelope.routing_key,
            None,
            0,
            reason,
            {"x-first-death-queue": queue.spec.name, "x-first-death-reason": reason},
        )
        for target in self._queues.values():
            if target.spec.exchange == dlx:
                target.items.put_nowait(dead)

    async def dead_letter_count(self) -> int:
        """How many messages wait in the dead-letter queue."""
        return self._queues[DEAD_LETTERS.name].items.qsize()

    async def queue_depth(self, queue: str) -> int:
        """How many messages wait in ``queue`` for a consumer (as RabbitMQ's ready count: not those being
        handled); :class:`LookupError` for a queue nobody declared, as a passive declare fails there."""
        found = self._queues.get(queue)
        if found is None:
            raise LookupError(f"no queue {queue!r} on the in-process bus")
        return found.items.qsize()


def _delivery_of(envelope: _Envelope) -> Delivery:
    """What a handler learns of how an envelope arrived (one place for the one-by-one and batch paths)."""
    return Delivery(
        routing_key=envelope.routing_key,
        redelivered=envelope.delivery_count > 1,
        delivery_count=envelope.delivery_count,
        death_reason=envelope.death_reason,
        headers=envelope.headers,
    )
