"""The bus seam: what services need from a message bus, whichever adapter carries the messages.

Two adapters implement it: :mod:`services.common.bus.rabbit` (RabbitMQ via FastStream/aio-pika) and
:mod:`services.common.bus.memory` (in-process, for ``seymour up`` and tests); the composition root
(:func:`services.runtime.make_bus`) picks one. Both serialize every
message to JSON and back, ack only after the handler returned, redeliver a message whose handler
raised up to ``DELIVERY_LIMIT`` times, and dead-letter it after that — so both modes fail alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.topology import EXCHANGE_OF, ROUTING_KEYS, QueueSpec
from contracts.v1 import AnyMessage, RunCheck


@dataclass(frozen=True)
class Delivery:
    """What a handler may want to know about how a message arrived."""

    routing_key: str
    redelivered: bool = False
    delivery_count: int = 1
    death_reason: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Any, Delivery], Awaitable[None]]

#: What a batch handler says of each item it was given, in order: ``None`` when the item's effect is
#: durable (it will be acked), or the exception that failed it alone (it is redelivered, and
#: dead-lettered after ``DELIVERY_LIMIT`` deliveries, exactly like a per-message handler that raised).
Outcome = BaseException | None
BatchHandler = Callable[[Sequence[tuple[Any, Delivery]]], Awaitable[Sequence[Outcome]]]


def one_item(message: Any) -> int:
    """The default weight of a message: one item."""
    return 1


@dataclass(frozen=True)
class Batch:
    """Consume some message types of a route in batches: one handler call for up to ``max_items``.

    A drain after an outage hands a consumer thousands of messages a second; one handler call, one task
    and one ack per message cost more than the database write they wait for. A batch is collected from
    what the broker has already pushed (up to ``max_items``, waiting at most ``max_wait_ms`` after the
    first), handed over in one call, and settled with one ``basic.ack(multiple=True)`` once the handler
    returned. Messages that cannot be believed or parsed are still refused alone, and so is an item the
    handler reports as failed; the rest of its batch is acked. ``depth`` batches may be in flight at once
    (the next fills while the previous one commits); they are settled in delivery order.

    A message may carry many items (a runner's ``check.completed.batch`` holds up to a hundred results),
    while a broker's prefetch counts messages. With ``inflight_items`` set, the RabbitMQ adapter bounds
    what the consumer holds unacked by items instead: it weighs each message with ``weight`` and sets the
    channel's prefetch to about ``inflight_items`` items' worth of messages (never more than the route's
    ``prefetch``), so single results still get the whole prefetch and batches of a hundred no more memory
    than a prefetch of single results would take. The in-process bus holds nothing beyond what was
    published, so it ignores both.
    """

    handler: BatchHandler
    #: The message types that go to ``handler``; others go to the route's per-message ``handlers``.
    types: frozenset[type]
    max_items: int = 500
    max_wait_ms: float = 20.0
    depth: int = 2
    #: Items a message carries (for ``inflight_items``); called on every decoded message of the route.
    weight: Callable[[Any], int] = one_item
    #: About how many items the consumer may hold unacked at once; ``None``: ``prefetch`` messages.
    inflight_items: int | None = None


@dataclass(frozen=True)
class Route:
    """One queue and the handler for each message type that may arrive on it.

    With ``batch`` set, the types it names are handed to its handler in batches; every other type still
    needs an entry in ``handlers`` (called once per message, as without ``batch``) or is dead-lettered.
    """

    queue: QueueSpec
    handlers: Mapping[type, Handler]
    prefetch: int = 64
    batch: Batch | None = None

    def accepts(self, kind: type) -> bool:
        """Whether a message of this type has a handler here (batched or not)."""
        return kind in self.handlers or (self.batch is not None and kind in self.batch.types)


def address_of(message: AnyMessage, routing_key: str | None = None) -> tuple[str, str]:
    """The exchange and routing key a message is published to (runs go by region)."""
    exchange = EXCHANGE_OF[message.kind]
    if routing_key is not None:
        return exchange, routing_key
    if isinstance(message, RunCheck):
        return exchange, message.region
    return exchange, ROUTING_KEYS[message.kind]


class Publisher(Protocol):
    """Publishes v1 messages; returns once the message is durably accepted (confirmed)."""

    async def publish(
        self,
        message: AnyMessage,
        *,
        routing_key: str | None = None,
        expiration: float | None = None,
        mandatory: bool = False,
    ) -> None:
        """Publish ``message``. ``expiration`` in seconds; ``mandatory`` raises ``Unroutable``."""
        ...


class Bus(Publisher, Protocol):
    """A publisher that also runs consumers."""

    def subscribe(self, route: Route) -> None:
        """Register a consumer; takes effect at :meth:`start` (or at once if already started)."""
        ...

    async def start(self) -> None:
        """Connect, declare the topology, start consuming."""
        ...

    async def stop(self) -> None:
        """Stop consuming, let in-flight handlers finish, disconnect."""
        ...

    async def declare_queue(self, queue: QueueSpec) -> None:
        """Declare a queue and its bindings (idempotent)."""
        ...

    async def dead_letter_count(self) -> int:
        """How many messages wait in the dead-letter queue."""
        ...
