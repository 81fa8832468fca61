"""The outbox: slots due together leave as one message, each slot's firing learns its batch's fate."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from contracts.v1 import CheckDue, CheckDueBatch, CheckSpec, RequestSpec, due_slots, utcnow
from services.common.errors import NotConfirmed
from services.scheduler.outbox import ITEM_OVERHEAD, DueOutbox

SPEC = CheckSpec(name="o", request=RequestSpec(url="http://127.0.0.1:9/"), regions=["eu-north-1"], interval=1)


def due(number: int) -> CheckDue:
    return CheckDue(check_id=uuid.UUID(int=number), slot=utcnow(), revision=1, spec=SPEC, epoch=1)


class Publisher:
    """Records what is published; fails every publish while ``failing``."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.failing = False

    async def publish(self, message: Any, **options: Any) -> None:
        await asyncio.sleep(0)
        if self.failing:
            raise NotConfirmed("broker away")
        assert options == {"mandatory": True}
        self.sent.append(message)


async def test_slots_sent_within_the_linger_leave_as_one_batch_and_a_lone_slot_alone() -> None:
    bus = Publisher()
    outbox = DueOutbox(bus, linger=0.02)
    items = [due(n) for n in range(5)]
    await asyncio.gather(*(outbox.send(item, 100) for item in items))
    (batch,) = bus.sent
    assert isinstance(batch, CheckDueBatch)
    assert due_slots(batch) == items
    lone = due(9)
    await outbox.send(lone, 100)
    assert bus.sent[1] is lone
    assert (outbox.batches, outbox.slots) == (2, 6)


async def test_a_batch_is_cut_at_its_item_and_byte_limits() -> None:
    bus = Publisher()
    outbox = DueOutbox(bus, linger=0.05, max_items=3, max_bytes=2 * (1000 + ITEM_OVERHEAD))
    await asyncio.gather(*(outbox.send(due(n), 10) for n in range(7)))
    assert [len(due_slots(message)) for message in bus.sent] == [3, 3, 1]
    bus.sent.clear()
    await asyncio.gather(*(outbox.send(due(n), 1000) for n in range(5)))
    assert [len(due_slots(message)) for message in bus.sent] == [2, 2, 1]


async def test_every_slot_of_a_batch_the_broker_refused_gets_the_failure() -> None:
    bus = Publisher()
    bus.failing = True
    outbox = DueOutbox(bus, linger=0.01)
    results = await asyncio.gather(*(outbox.send(due(n), 10) for n in range(4)), return_exceptions=True)
    assert all(isinstance(result, NotConfirmed) for result in results)
    bus.failing = False
    await outbox.send(due(1), 10)
    assert len(bus.sent) == 1


async def test_a_slot_that_gave_up_waiting_does_not_stop_its_batch() -> None:
    bus = Publisher()
    outbox = DueOutbox(bus, linger=0.05)
    waiting = asyncio.create_task(outbox.send(due(1), 10))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await outbox.send(due(2), 10)
    await waiting
    assert [len(due_slots(message)) for message in bus.sent] == [2]


async def test_close_publishes_what_waits() -> None:
    bus = Publisher()
    outbox = DueOutbox(bus, linger=60.0)
    waiting = asyncio.create_task(outbox.send(due(1), 10))
    await asyncio.sleep(0.01)
    await outbox.close()
    await waiting
    assert len(bus.sent) == 1
