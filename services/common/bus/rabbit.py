"""RabbitMQ adapter of the bus seam, with every FastStream default that loses messages overridden.

FastStream (and aio-pika under it) lives only in this module (and in :mod:`.asyncapi`, which only
describes the topology). Decisions, each on purpose:

* Exchanges from ``contracts.topology.EXCHANGES`` are durable. Durable queues are **quorum** queues with
  ``x-delivery-limit``, ``x-dead-letter-exchange`` and at-least-once dead-lettering (``x-overflow:
  reject-publish``), set as queue arguments rather than policies: policies need the management API or
  ``rabbitmqctl``, which a service must not depend on. Exclusive QueueSpecs (per-process feeds) are
  classic, exclusive and auto-delete; classic queues have no delivery limit, so for them the adapter
  counts failures itself (an exclusive queue only ever delivers to this process, so the count is exact).
* RabbitMQ 3.10 quorum queues honour per-message ``expiration`` and dead-letter expired messages with
  reason ``expired`` even with no consumer attached (checked on 3.10.8), so runner queues are quorum too.
* A quorum queue's ``x-delivery-limit`` counts *re*deliveries; it is set to ``DELIVERY_LIMIT - 1`` so a
  poison message reaches its handler exactly ``DELIVERY_LIMIT`` times, as on the in-process bus.
* Publishes go straight to an aio-pika channel opened with publisher confirms (FastStream's publish
  path cost ~15 % of a runner's CPU for nothing the seam uses). They are persistent, wait for the
  confirm (bounded by ``publish_timeout``: a publish during a broker outage raises ``NotConfirmed``
  instead of hanging), and ``mandatory`` publishes that come back raise ``Unroutable`` (the channel
  is opened with ``on_return_raises``).
* Consumers ack manually after the handler returns; the prefetch bounds how many handlers run at
  once (aio-pika starts one task per delivery, so they run concurrently). Undecodable bodies and
  messages with no handler are rejected without requeue (dead-lettered at once); a handler that
  raised is nacked with requeue and the delivery limit dead-letters it in the end.
* A route with a :class:`~services.common.bus.protocol.Batch` is consumed by
  :class:`~services.common.bus.rabbit_batch.BatchConsumer` on aio-pika directly: one handler call and
  one ``basic.ack(multiple=True)`` per batch, with the same refusals, counts and redelivery rules.
* Every publish carries ``user_id`` = this connection's account (RabbitMQ refuses any other), and
  every consumer dead-letters, undecoded, bodies over ``MAX_MESSAGE_BYTES``, and, decoded, messages
  :func:`services.common.bus.senders.refusal` does not believe (no ``user_id``; a region's account
  speaking for another region or sending what a region never sends), counted in
  ``seymour_bus_refused_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, cast

from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq.channel import Channel as AmqpChannel
from aiormq.exceptions import AMQPError, DeliveryError, PublishError
from faststream import AckPolicy
from faststream.rabbit import Channel, QueueType, RabbitBroker, RabbitQueue
from faststream.rabbit.message import RabbitMessage
from pamqp.commands import Basic

from contracts.topology import DEAD_LETTERS, DELIVERY_LIMIT, EXCHANGES, MAX_MESSAGE_BYTES, QueueSpec
from contracts.v1 import AnyMessage, decode, encode
from services.common.bus.protocol import Delivery, Handler, Route, address_of
from services.common.bus.rabbit_batch import NACK, REJECT, BatchConsumer, death_reason
from services.common.bus.senders import refusal
from services.common.errors import BusClosed, NotConfirmed, Unroutable
from services.common.logs import bind as bind_log_subject
from services.common.metrics import (
    HANDLER_FAILURES,
    MESSAGES_CONSUMED,
    MESSAGES_DEAD_LETTERED,
    MESSAGES_PUBLISHED,
    MESSAGES_REDELIVERED,
    METRICS,
    QUEUE_DEPTH,
)
from services.common.tasks import cancel_and_wait

if TYPE_CHECKING:
    from faststream.rabbit.schemas.queue import ClassicQueueArgs, QuorumQueueArgs

log = logging.getLogger(__name__)

CONTENT_TYPE: Final = "application/json"
PERSISTENT: Final = 2
#: How many classic-queue failures are remembered at most (entries leave on success or dead-letter).
_MAX_TRACKED_FAILURES: Final = 10_000
#: How long a handler whose publish failed is retried in place while the broker link comes back.
BUS_RETRY_S: Final = 30.0
BUS_RETRY_PAUSE_S: Final = 0.5
#: How often the depth of each consumed queue (and the dead letters) is sampled for ``/metrics``.
DEPTH_INTERVAL: Final = 5.0


def queue_arguments(spec: QueueSpec) -> dict[str, Any]:
    """The ``x-`` arguments a QueueSpec is declared with (quorum unless it is exclusive)."""
    arguments: dict[str, Any] = {}
    if spec.exclusive:
        arguments["x-queue-type"] = QueueType.CLASSIC.value
    else:
        arguments["x-queue-type"] = QueueType.QUORUM.value
        arguments["x-delivery-limit"] = DELIVERY_LIMIT - 1
    if spec.dead_letter_exchange:
        arguments["x-dead-letter-exchange"] = spec.dead_letter_exchange
        if not spec.exclusive:
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    if spec.message_ttl_ms is not None:
        arguments["x-message-ttl"] = spec.message_ttl_ms
    if spec.expires_ms is not None:
        arguments["x-expires"] = spec.expires_ms
    arguments.update(spec.extra)
    return arguments


def _rabbit_queue(spec: QueueSpec) -> RabbitQueue:
    """The FastStream queue a subscriber consumes (declared with the same arguments as the topology)."""
    arguments = queue_arguments(spec)
    if spec.exclusive:
        return RabbitQueue(
            spec.name,
            QueueType.CLASSIC,
            durable=False,
            exclusive=True,
            auto_delete=True,
            arguments=cast("ClassicQueueArgs", arguments),
        )
    return RabbitQueue(
        spec.name, QueueType.QUORUM, durable=True, arguments=cast("QuorumQueueArgs", arguments)
    )


def _message_id(message: AnyMessage) -> str:
    """The AMQP message id: the run id for run messages (so a dead letter names its run), else the id."""
    run_id = getattr(message, "run_id", None)
    return str(run_id if run_id is not None else message.message_id)


#: Why a dead-lettered message died the first time (shared with the batch consumer).
_death_reason = death_reason


class RabbitBus:
    """The RabbitMQ adapter of :class:`services.common.bus.Bus` (FastStream 0.7 over aio-pika)."""

    def __init__(
        self,
        broker_url: str,
        *,
        instance: str = "seymour",
        publish_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        stop_timeout: float = 10.0,
        reconnect_interval: float = 2.0,
    ) -> None:
        self._url = broker_url
        #: Stamped on every publish as ``user_id`` (the broker refuses it unless it is this account).
        self._user = urllib.parse.unquote(urllib.parse.urlsplit(broker_url).username or "guest")
        self._instance = instance
        self._publish_timeout = publish_timeout
        self._connect_timeout = connect_timeout
        self._stop_timeout = stop_timeout
        self._reconnect_interval = reconnect_interval
        self._routes: list[Route] = []
        self._declared: dict[str, QueueSpec] = {}
        self._broker: RabbitBroker | None = None
        self._topology: AbstractRobustChannel | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._app_id = f"seymour:{instance}"
        self._pending: set[asyncio.Task[None]] = set()
        self._failures: dict[bytes, int] = {}
        self._depths: asyncio.Task[None] | None = None
        self._existing: set[str] = set()
        self._connection: AbstractRobustConnection | None = None
        self._batches: list[BatchConsumer] = []

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, declare exchanges, the dead-letter queue and every subscribed queue, start consuming."""
        if self._broker is not None:
            return
        broker = RabbitBroker(
            self._url,
            default_channel=Channel(publisher_confirms=True, on_return_raises=True),
            timeout=self._connect_timeout,
            reconnect_interval=self._reconnect_interval,
            graceful_timeout=self._stop_timeout,
            ack_policy=AckPolicy.MANUAL,
            app_id=f"seymour:{self._instance}",
            apply_types=False,
            logger=log,
            log_level=logging.DEBUG,
        )
        connection: AbstractRobustConnection = await broker.connect()
        topology = await connection.channel()
        publisher = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._broker, self._topology, self._publisher = broker, topology, publisher
        try:
            for exchange in EXCHANGES:
                await topology.declare_exchange(exchange.name, exchange.kind, durable=True)
            for spec in (DEAD_LETTERS, *self._declared.values(), *(route.queue for route in self._routes)):
                await self._declare(spec)
            for route in self._routes:
                if route.batch is None:
                    self._register(broker, route)
            await broker.start()
            self._connection = connection
            for route in self._routes:
                if route.batch is not None:
                    await self._start_batches(connection, route)
        except BaseException:
            self._broker = self._topology = self._publisher = self._connection = None
            await self._stop_batches()
            await broker.stop()
            raise
        self._depths = asyncio.create_task(self._sample_depths(), name="bus-queue-depths")
        log.info("bus started instance=%s routes=%d", self._instance, len(self._routes))

    async def stop(self) -> None:
        """Stop consuming, wait (bounded) for in-flight handlers, close the connection.

        A handler still running after ``stop_timeout`` is cancelled; its message was not acked, so the
        broker delivers it again.
        """
        await cancel_and_wait(self._depths)
        self._depths = None
        # Batches first, while the publishing channel is still open for handlers that publish.
        await self._stop_batches()
        broker, self._broker, self._topology, self._publisher = self._broker, None, None, None
        self._connection = None
        for task in list(self._pending):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if broker is not None:
            await broker.stop()
            log.info("bus stopped instance=%s", self._instance)

    def healthy(self) -> bool:
        """Whether the bus is started and its publishing channel is open (for the health beat)."""
        channel = self._publisher
        return channel is not None and not channel.is_closed

    # -- topology ------------------------------------------------------------------------------------

    async def declare_queue(self, queue: QueueSpec) -> None:
        """Declare a queue and its bindings (idempotent); remembered and re-declared at every start."""
        self._declared[queue.name] = queue
        if self._topology is not None:
            await self._declare(queue)

    async def _declare(self, spec: QueueSpec) -> None:
        topology = self._require_topology()
        declared = await topology.declare_queue(
            spec.name,
            durable=not spec.exclusive,
            exclusive=spec.exclusive,
            auto_delete=spec.exclusive,
            arguments=queue_arguments(spec),
        )
        for key in spec.binding_keys:
            await declared.bind(spec.exchange, routing_key=key)
        if not spec.exclusive:
            self._existing.add(spec.name)

    def subscribe(self, route: Route) -> None:
        """Register a consumer; it starts with :meth:`start`, or at once (in a task) if already started."""
        self._routes.append(route)
        broker = self._broker
        if broker is None:
            return
        task = asyncio.get_running_loop().create_task(self._start_late(broker, route))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _start_late(self, broker: RabbitBroker, route: Route) -> None:
        try:
            await self._declare(route.queue)
            if route.batch is not None and self._connection is not None:
                await self._start_batches(self._connection, route)
            else:
                await self._register(broker, route).start()
        except Exception:
            log.exception("could not start consumer queue=%s", route.queue.name)

    async def _start_batches(self, connection: AbstractRobustConnection, route: Route) -> None:
        """Consume ``route`` in batches on aio-pika directly (see :mod:`.rabbit_batch` for why)."""
        assert route.batch is not None
        spec = route.queue
        consumer = BatchConsumer(
            route,
            route.batch,
            arguments=queue_arguments(spec),
            delivery_count=lambda redelivered, headers, key: self._delivery_count(
                spec, redelivered, headers, key
            ),
            after_failure=self._failure_action,
            forget_failure=lambda key: self._failures.pop(key, None),
            bus_open=lambda: self._broker is not None,
            retry_s=BUS_RETRY_S,
            retry_pause_s=BUS_RETRY_PAUSE_S,
        )
        self._batches.append(consumer)
        await consumer.start(connection)

    async def _stop_batches(self) -> None:
        consumers, self._batches = self._batches, []
        for consumer in consumers:
            await consumer.stop(self._stop_timeout)

    def _register(self, broker: RabbitBroker, route: Route) -> Any:
        """Attach a FastStream subscriber for ``route`` on its own channel (its own prefetch)."""
        subscriber = broker.subscriber(
            _rabbit_queue(route.queue),
            channel=Channel(prefetch_count=route.prefetch),
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
        )

        async def on_message(message: RabbitMessage) -> None:
            await self._handle(route, message)

        subscriber(on_message, decoder=_raw_message)
        return subscriber

    # -- consuming -----------------------------------------------------------------------------------

    async def _handle(self, route: Route, message: RabbitMessage) -> None:
        raw = message.raw_message
        queue = route.queue.name
        if len(raw.body) > MAX_MESSAGE_BYTES:
            await self._refuse(message, queue, f"{len(raw.body)} bytes > {MAX_MESSAGE_BYTES}", "too_large")
            return
        try:
            decoded: AnyMessage | None = decode(raw.body)
        except Exception as exc:
            log.warning("dead-lettering undecodable message queue=%s error=%s", queue, str(exc)[:300])
            decoded = None
        bind_log_subject(decoded)  # the run this task's log lines are about
        if decoded is not None:
            why = refusal(decoded, raw.user_id)
            if why is not None:
                await self._refuse(message, queue, why, "sender")
                return
        handler: Handler | None = None if decoded is None else route.handlers.get(type(decoded))
        if decoded is None or handler is None:
            if decoded is not None:
                log.warning("dead-lettering message with no handler queue=%s kind=%s", queue, decoded.kind)
            MESSAGES_DEAD_LETTERED.labels(queue, "malformed" if decoded is None else "no_handler").inc()
            await self._settle(message.reject(requeue=False), queue)
            return
        if raw.redelivered:
            MESSAGES_REDELIVERED.labels(queue).inc()
        headers: dict[str, Any] = dict(raw.headers or {})
        key = hashlib.blake2b(raw.body, digest_size=16).digest()
        delivery = Delivery(
            routing_key=raw.routing_key or "",
            redelivered=bool(raw.redelivered),
            delivery_count=self._delivery_count(route.queue, raw.redelivered, headers, key),
            death_reason=_death_reason(headers),
            headers=headers,
        )
        try:
            await self._call(handler, decoded, delivery, queue)
        except Exception:
            log.exception(
                "handler failed queue=%s kind=%s attempt=%d", queue, decoded.kind, delivery.delivery_count
            )
            HANDLER_FAILURES.labels(queue).inc()
            if delivery.delivery_count >= DELIVERY_LIMIT:
                MESSAGES_DEAD_LETTERED.labels(queue, "delivery_limit").inc()
            await self._settle(self._after_failure(route.queue, message, delivery, key), queue)
            return
        self._failures.pop(key, None)
        await self._settle(message.ack(), queue)
        MESSAGES_CONSUMED.labels(queue, decoded.kind).inc()

    async def _refuse(self, message: RabbitMessage, queue: str, why: str, reason: str) -> None:
        """Dead-letter a message home must not believe or parse, and count it."""
        raw = message.raw_message
        log.warning(
            "dead-lettering refused message queue=%s reason=%s user_id=%s why=%s",
            queue,
            reason,
            raw.user_id,
            why,
        )
        METRICS.inc("seymour_bus_refused_total", queue=queue, reason=reason)
        MESSAGES_DEAD_LETTERED.labels(queue, reason).inc()
        await self._settle(message.reject(requeue=False), queue)

    async def _call(self, handler: Handler, decoded: AnyMessage, delivery: Delivery, queue: str) -> None:
        """Run the handler; when it failed only because *our* publish could not go out (the broker link is
        coming back: consumers resume before the publishing channel does), wait for the channel and run it
        again, rather than nack at once — five quick redeliveries would dead-letter a good message."""
        deadline = asyncio.get_running_loop().time() + BUS_RETRY_S
        while True:
            try:
                await handler(decoded, delivery)
                return
            except (NotConfirmed, BusClosed) as exc:
                if asyncio.get_running_loop().time() >= deadline or self._broker is None:
                    raise
                log.warning("handler could not publish, retrying queue=%s error=%s", queue, exc)
                await asyncio.sleep(BUS_RETRY_PAUSE_S)

    def _delivery_count(
        self, spec: QueueSpec, redelivered: bool | None, headers: Mapping[str, Any], key: bytes
    ) -> int:
        if not spec.exclusive:
            return int(headers.get("x-delivery-count") or 0) + 1
        return max(self._failures.get(key, 0) + 1, 2 if redelivered else 1)

    def _after_failure(self, spec: QueueSpec, message: RabbitMessage, delivery: Delivery, key: bytes) -> Any:
        """Nack with requeue; on a classic queue, dead-letter once the adapter's own count hits the limit."""
        if not spec.exclusive:
            return message.nack(requeue=True)
        if delivery.delivery_count >= DELIVERY_LIMIT:
            self._failures.pop(key, None)
            return message.reject(requeue=False)
        if len(self._failures) >= _MAX_TRACKED_FAILURES:
            self._failures.pop(next(iter(self._failures)))
        self._failures[key] = delivery.delivery_count
        return message.nack(requeue=True)

    def _failure_action(self, delivery_count: int, key: bytes) -> int:
        """:meth:`_after_failure` for the batch consumer on a classic queue: what to do, not done yet."""
        if delivery_count >= DELIVERY_LIMIT:
            self._failures.pop(key, None)
            return REJECT
        if len(self._failures) >= _MAX_TRACKED_FAILURES:
            self._failures.pop(next(iter(self._failures)))
        self._failures[key] = delivery_count
        return NACK

    @staticmethod
    async def _settle(settlement: Any, queue: str) -> None:
        """Ack/nack/reject; if the channel is gone the broker redelivers the message anyway."""
        try:
            await settlement
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            log.warning("could not settle message queue=%s error=%r (it will be redelivered)", queue, exc)

    # -- publishing ----------------------------------------------------------------------------------

    async def publish(
        self,
        message: AnyMessage,
        *,
        routing_key: str | None = None,
        expiration: float | None = None,
        mandatory: bool = False,
    ) -> None:
        """Publish persistently and wait for the confirm.

        Raises :class:`Unroutable` when ``mandatory`` and no queue is bound, :class:`NotConfirmed` when
        the broker nacks or does not confirm within ``publish_timeout`` (e.g. during an outage), and
        :class:`BusClosed` when the bus is not started.
        """
        exchange, key = address_of(message, routing_key)
        await self._send(
            exchange,
            key,
            encode(message),
            message_id=_message_id(message),
            kind=message.kind,
            expiration=None if expiration is None else max(expiration, 0.0),
            mandatory=mandatory,
        )

    async def publish_raw(self, exchange: str, routing_key: str, body: bytes) -> None:
        """Publish bytes as they are (tests use it to send malformed messages)."""
        await self._send(
            exchange, routing_key, body, message_id=None, kind=None, expiration=None, mandatory=False
        )

    async def _send(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None,
        kind: str | None,
        expiration: float | None,
        mandatory: bool,
    ) -> None:
        channel = self._publisher
        if channel is None:
            raise BusClosed("the RabbitMQ bus is not started")
        properties = Basic.Properties(
            delivery_mode=PERSISTENT,
            content_type=CONTENT_TYPE,
            message_id=message_id,
            message_type=kind,
            expiration=None if expiration is None else str(int(expiration * 1000)),
            app_id=self._app_id,
            user_id=self._user,
        )
        if channel.is_closed:
            # Fail at once while the link is down (as aio-pika's publish did): a firing that waited out the
            # timeout instead would hold up its check's next slot.
            raise NotConfirmed(f"publish to {exchange} failed: the channel is closed (broker link down)")
        try:
            # aiormq's own publish, not aio-pika's: ``wait=False`` releases the channel's lock once the
            # frames are queued instead of after they reach the socket, so many publishes are in flight
            # at once and each awaits only its confirm (bounded by ``timeout``, the whole publish).
            underlay = cast("AmqpChannel", await channel.get_underlay_channel())
            await underlay.basic_publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=mandatory,
                timeout=self._publish_timeout,
                wait=False,
            )
        except PublishError as exc:
            raise Unroutable(f"no queue bound to {exchange} for {routing_key!r}") from exc
        except DeliveryError as exc:
            raise NotConfirmed(f"broker nacked publish to {exchange} key={routing_key!r}") from exc
        except TimeoutError as exc:
            raise NotConfirmed(
                f"no confirm within {self._publish_timeout}s for {exchange} key={routing_key!r}"
            ) from exc
        except (AMQPError, ConnectionError, RuntimeError) as exc:
            raise NotConfirmed(f"publish to {exchange} failed: {exc!r}") from exc
        MESSAGES_PUBLISHED.labels(exchange, kind or "raw").inc()

    # -- inspection ----------------------------------------------------------------------------------

    async def dead_letter_count(self) -> int:
        """How many messages wait in ``seymour.dead-letters`` (a passive declare, never cached)."""
        return await self.queue_depth(DEAD_LETTERS.name)

    async def queue_depth(self, queue: str) -> int:
        """How many messages are ready in ``queue`` (passive declare on the underlying channel)."""
        topology = self._require_topology()
        channel = await topology.get_underlay_channel()
        declared = await channel.queue_declare(queue, passive=True)
        return int(declared.message_count or 0)

    async def _sample_depths(self) -> None:
        """Keep ``seymour_queue_depth`` current for the queues this process consumes and the dead letters."""
        while True:
            # Only queues this bus has declared: a passive declare of a missing queue closes the channel.
            wanted = {DEAD_LETTERS.name, *(route.queue.name for route in self._routes)}
            for name in sorted(wanted & self._existing):
                try:
                    QUEUE_DEPTH.labels(name).set(await self.queue_depth(name))
                except Exception as exc:
                    log.debug("could not sample queue depth queue=%s error=%r", name, exc)
            await asyncio.sleep(DEPTH_INTERVAL)

    def _require_topology(self) -> AbstractRobustChannel:
        if self._topology is None:
            raise BusClosed("the RabbitMQ bus is not started")
        return self._topology


async def _raw_message(message: RabbitMessage) -> RabbitMessage:
    """FastStream decoder that hands the handler the message itself (the adapter decodes and acks)."""
    return message


__all__ = ["RabbitBus", "queue_arguments"]
