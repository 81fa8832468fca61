"""A runner's batches on real RabbitMQ and PostgreSQL: every item is stored through the same path as a
result sent alone (once, however often it arrives, alone or batched), and a batch that is not believable
whole — an item of another region, no items — is dead-lettered without storing any part of it."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import func, select

from contracts.topology import CHECK_COMPLETED_BATCH, RESULTS_EXCHANGE
from contracts.v1 import CheckCompleted, CheckCompletedBatch, encode
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run, RunRollup
from services.common.settings import Settings
from services.results.main import build
from services.results.tests.test_batches import result
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres]


async def _counts(sessions: object) -> tuple[int, int, int]:
    async with sessions() as session:  # type: ignore[operator]
        rows = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(Run.run_id))))).scalar_one()
        rolled = (await session.execute(select(func.coalesce(func.sum(RunRollup.total), 0)))).scalar_one()
    return int(rows), int(distinct), int(rolled)


def batches_of(messages: list[CheckCompleted], size: int) -> list[CheckCompletedBatch]:
    return [
        CheckCompletedBatch(region=messages[start].region, items=messages[start : start + size])
        for start in range(0, len(messages), size)
    ]


async def test_every_item_of_a_batch_is_stored_once_however_it_arrives(pg_url: str, rabbit_url: str) -> None:
    """Batches, one batch delivered twice, and results that also came alone (an old runner, or a batch
    resent as singles after it was refused): each run is one row, counted once in the rollups."""
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    check_id = uuid.uuid4()
    messages = [result(check_id, index) for index in range(100)]
    batches = batches_of(messages, 20)
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    try:
        for batch in batches:
            await bus.publish(batch)
        await bus.publish(batches[2])  # delivered again (a runner that died before its RunChecks were acked)
        for message in messages[:10]:  # and alone
            await bus.publish(message)

        async def all_stored() -> bool:
            return (await _counts(sessions))[0] == 100

        await eventually(all_stored, within=30, every=0.05)
        async with sessions() as session:
            stored = set((await session.scalars(select(Run.run_id))).all())
        assert stored == {message.run_id for message in messages}
        assert await _counts(sessions) == (100, 100, 100)
        assert await bus.dead_letter_count() == 0
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


def _stray_item(batch: CheckCompletedBatch) -> bytes:
    """``batch`` on the wire with its last item moved to another region (what a region host might forge)."""
    data = json.loads(encode(batch))
    data["items"][-1]["region"] = "us-east-1"
    return json.dumps(data).encode()


def _empty(batch: CheckCompletedBatch) -> bytes:
    data = json.loads(encode(batch))
    data["items"] = []
    return json.dumps(data).encode()


@pytest.mark.parametrize("spoil", [_stray_item, _empty], ids=["item-of-another-region", "no-items"])
async def test_a_batch_that_is_not_believable_whole_is_dead_lettered_whole(
    pg_url: str, rabbit_url: str, spoil: object
) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    check_id = uuid.uuid4()
    bad = CheckCompletedBatch(region="eu-west-1", items=[result(check_id, index) for index in range(10)])
    good = CheckCompletedBatch(region="eu-west-1", items=[result(check_id, index) for index in range(10, 20)])
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    try:
        await bus.publish_raw(RESULTS_EXCHANGE, CHECK_COMPLETED_BATCH, spoil(bad))  # type: ignore[operator]
        await bus.publish(good)

        async def settled() -> bool:
            return (await _counts(sessions))[0] == 10 and await bus.dead_letter_count() == 1

        await eventually(settled, within=30, every=0.05)
        async with sessions() as session:
            stored = set((await session.scalars(select(Run.run_id))).all())
        assert stored == {item.run_id for item in good.items}
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
