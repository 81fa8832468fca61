"""Dead letters an operator can act on: list them by reason, show one, replay or purge them.

RabbitMQ cannot read a queue without taking messages off it, and requeueing counts as a failed delivery
on a quorum queue (the dead-letter queue has a delivery limit and nowhere further to go). So every
operation is one *walk* over the messages waiting when it starts: each message is taken, then either
put back at the tail (a confirmed copy, before the original is acked, so a crash leaves a duplicate at
worst, never a loss), replayed to the exchange and routing key it died from, or dropped. After a walk
that kept everything, the queue holds the same messages in the same order.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from contracts.topology import DEAD_LETTERS
from services.common.bus.rabbit import queue_arguments

log = logging.getLogger(__name__)

Decision = Literal["keep", "replay", "drop"]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message and why it died."""

    message_id: str | None
    kind: str | None
    queue: str
    reason: str
    exchange: str
    routing_key: str
    dead_at: datetime | None
    body: bytes
    headers: Mapping[str, Any]
    user_id: str | None = None

    @classmethod
    def of(cls, message: AbstractIncomingMessage) -> DeadLetter:
        """Read the ``x-death`` bookkeeping RabbitMQ (or the in-process bus) put on the message."""
        headers: dict[str, Any] = dict(message.headers or {})
        deaths = headers.get("x-death")
        first: Mapping[str, Any] = deaths[-1] if isinstance(deaths, list) and deaths else {}
        keys = first.get("routing-keys") or []
        dead_at = first.get("time")
        if isinstance(dead_at, datetime) and dead_at.tzinfo is None:
            dead_at = dead_at.replace(tzinfo=UTC)
        return cls(
            message_id=message.message_id,
            kind=message.type,
            queue=_text(headers.get("x-first-death-queue")) or _text(first.get("queue")) or "?",
            reason=_text(headers.get("x-first-death-reason")) or _text(first.get("reason")) or "?",
            exchange=_text(headers.get("x-first-death-exchange")) or _text(first.get("exchange")) or "",
            routing_key=(_text(keys[0]) if keys else message.routing_key) or "",
            dead_at=dead_at if isinstance(dead_at, datetime) else None,
            user_id=message.user_id,
            body=message.body,
            headers=headers,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly line about the message (the body only by size)."""
        return {
            "message_id": self.message_id,
            "kind": self.kind,
            "queue": self.queue,
            "reason": self.reason,
            "exchange": self.exchange,
            "routing_key": self.routing_key,
            "dead_at": self.dead_at.isoformat() if self.dead_at else None,
            "bytes": len(self.body),
        }


@dataclass
class Walk:
    """What one walk saw and did."""

    seen: int = 0
    kept: int = 0
    replayed: int = 0
    dropped: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_queue: Counter[str] = field(default_factory=Counter)
    letters: list[DeadLetter] = field(default_factory=list)


async def walk(
    broker_url: str,
    decide: Callable[[DeadLetter], Decision],
    *,
    collect: Callable[[DeadLetter], bool] = lambda _letter: False,
) -> Walk:
    """Take each message waiting in the dead-letter queue once and keep, replay or drop it per ``decide``.

    ``collect`` picks the letters to return in :attr:`Walk.letters` (e.g. the one asked for by id).
    A replay whose route no longer exists is kept instead (and logged).
    """
    result = Walk()
    account = urllib.parse.unquote(urllib.parse.urlsplit(broker_url).username or "guest")
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue(
            DEAD_LETTERS.name, durable=True, arguments=queue_arguments(DEAD_LETTERS)
        )
        waiting = int(queue.declaration_result.message_count or 0)
        for _ in range(waiting):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letter = DeadLetter.of(message)
            result.seen += 1
            result.by_reason[letter.reason] += 1
            result.by_queue[letter.queue] += 1
            if collect(letter):
                result.letters.append(letter)
            decision = decide(letter)
            if decision == "replay" and not await _replay(channel, letter, message, account):
                decision = "keep"
            if decision == "keep":
                await channel.default_exchange.publish(_copy(message, message.headers), DEAD_LETTERS.name)
                result.kept += 1
            elif decision == "replay":
                result.replayed += 1
            else:
                result.dropped += 1
            await message.ack()
    finally:
        await connection.close()
    return result


async def count(broker_url: str) -> int:
    """How many dead letters wait (without taking any)."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            DEAD_LETTERS.name, durable=True, arguments=queue_arguments(DEAD_LETTERS)
        )
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


def _copy(message: AbstractIncomingMessage, headers: Any) -> aio_pika.Message:
    return aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        message_id=message.message_id,
        type=message.type,
        app_id=message.app_id,
        timestamp=message.timestamp,
        user_id=message.user_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def _replay(channel: Any, letter: DeadLetter, message: AbstractIncomingMessage, account: str) -> bool:
    """Publish the message to where it died from, without its death records (they would mislead).

    The replay goes out under the operator's account (RabbitMQ checks ``user_id``). A message that died
    after its handler ran (``delivery_limit``) had already been believed, so that is safe; one that was
    rejected on arrival may have been refused for who sent it, so it is replayed only if this same account
    had sent it — replaying must not launder a region's message into home's.
    """
    if not letter.exchange:
        log.warning("dead letter has no exchange to replay to message_id=%s", letter.message_id)
        return False
    if letter.reason != "delivery_limit" and letter.user_id != account:
        log.warning(
            "not replaying a rejected message sent by another account message_id=%s user_id=%s",
            letter.message_id,
            letter.user_id,
        )
        return False
    headers = {key: value for key, value in letter.headers.items() if not key.startswith("x-")}
    replay = _copy(message, headers)
    replay.user_id = account
    try:
        exchange = await channel.get_exchange(letter.exchange, ensure=False)
        await exchange.publish(replay, letter.routing_key, mandatory=True)
    except Exception as exc:
        log.warning(
            "replay failed, kept message_id=%s exchange=%s error=%r", letter.message_id, letter.exchange, exc
        )
        return False
    return True
