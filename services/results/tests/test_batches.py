"""Batches on real RabbitMQ and PostgreSQL: a batch redelivered after its commit stores nothing twice, and a
poison message inside a batch is dead-lettered alone while the rest of the batch is stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.v1 import CheckCompleted, ResponseSample, Timings
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run, RunRollup
from services.common.settings import Settings
from services.results import pg
from services.results.main import build
from services.results.rows import completed_row
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres]

SLOT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def result(check_id: uuid.UUID, index: int, region: str = "eu-west-1") -> CheckCompleted:
    slot = SLOT + timedelta(minutes=index)
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=check_id,
        slot=slot,
        region=region,
        status="passed",
        started_at=slot,
        completed_at=slot + timedelta(milliseconds=20),
        response=ResponseSample(status_code=200, body='{"ok": true}'),
        timings=Timings(total_ms=20.0 + index),
    )


async def _counts(sessions: object) -> tuple[int, int, int]:
    async with sessions() as session:  # type: ignore[operator]
        rows = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
        distinct = (await session.execute(select(func.count(func.distinct(Run.run_id))))).scalar_one()
        rolled = (await session.execute(select(func.coalesce(func.sum(RunRollup.total), 0)))).scalar_one()
    return int(rows), int(distinct), int(rolled)


async def test_a_batch_redelivered_after_its_commit_stores_each_run_once(
    pg_url: str, rabbit_url: str
) -> None:
    """The process committed a batch and died before acking it: the broker delivers the whole batch again.
    Every run stays one row and the hourly rollups count it once."""
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    check_id = uuid.uuid4()
    messages = [
        result(check_id, index % 50, region=("eu-west-1", "us-east-1")[index // 50]) for index in range(100)
    ]
    stored_at = datetime.now(UTC)
    committed = [{**completed_row(message), "stored_at": stored_at} for message in messages[:60]]
    inserted = await pg.write_batch(engine, committed, [])
    assert len(inserted) == 60

    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    try:
        for message in messages:  # the redelivered batch, then the rest
            await bus.publish(message)

        async def all_stored() -> bool:
            return (await _counts(sessions))[2] == 100

        await eventually(all_stored, within=30, every=0.05)
        assert await _counts(sessions) == (100, 100, 100)
        assert await bus.dead_letter_count() == 0
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


async def test_a_poison_message_in_a_batch_is_dead_lettered_alone(pg_url: str, rabbit_url: str) -> None:
    """A result the database refuses (a region longer than its column) arrives inside a batch of good ones:
    the good ones are stored at once, the poison one alone goes round its deliveries to the dead letters."""
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    check_id = uuid.uuid4()
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    service = build(Settings(results_batch_ms=50), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    good = [result(check_id, index) for index in range(40)]
    poison = result(check_id, 99, region="x" * 41)
    await bus.start()
    try:
        for message in [*good[:20], poison, *good[20:]]:
            await bus.publish(message)
        await service.start()  # everything is queued: the first batch holds the poison message

        async def settled() -> bool:
            return (await _counts(sessions))[0] == 40 and await bus.dead_letter_count() == 1

        await eventually(settled, within=60, every=0.1)
        assert await _counts(sessions) == (40, 40, 40)
        async with sessions() as session:
            assert await session.get(Run, poison.run_id) is None
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
