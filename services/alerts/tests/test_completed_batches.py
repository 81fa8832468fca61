"""A runner's batches on real RabbitMQ and PostgreSQL: alerts folds each item as if it came alone (the same
incidents and one notification per channel per transition), a batch delivered twice queues nothing twice,
and a batch with an item of another region is dead-lettered without folding any part of it."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from contracts.topology import CHECK_COMPLETED_BATCH, RESULTS_EXCHANGE
from contracts.v1 import CheckCompletedBatch, encode
from services.alerts.main import build
from services.alerts.tests.conftest import all_channels, store_check
from services.alerts.tests.test_end_to_end import REGIONS, T0, result
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import AlertState, Incident, Notification
from services.common.settings import Settings
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres]

#: Every region passes, then fails for three slots (an incident), then passes again (recovery).
VERDICTS = [True, True, False, False, False, True, True]


async def _effects(sessions: object, check_id: uuid.UUID) -> tuple[Counter[tuple[str, int]], list[str]]:
    async with sessions() as session:  # type: ignore[operator]
        notes = (await session.scalars(select(Notification).where(Notification.check_id == check_id))).all()
        incidents = (await session.scalars(select(Incident).where(Incident.check_id == check_id))).all()
    return (
        Counter((note.transition, note.channel_index) for note in notes),
        sorted(incident.state for incident in incidents),
    )


async def test_batched_results_fold_like_results_sent_alone(pg_url: str, rabbit_url: str) -> None:
    spec = all_channels("http://127.0.0.1:1", failure_threshold=2)
    alone = await store_check(pg_url, {**spec, "name": "alone"})
    batched = [await store_check(pg_url, {**spec, "name": f"batched-{index}"}) for index in range(4)]
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    service = build(Settings(), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    try:
        for slot, passed in enumerate(VERDICTS):
            for region in REGIONS:
                await bus.publish(result(alone, slot, region, passed))
                # What one region's runner sends: this slot's results of every check, in one message.
                batch = CheckCompletedBatch(
                    region=region, items=[result(check, slot, region, passed) for check in batched]
                )
                await bus.publish(batch)
                if slot == 3:
                    await bus.publish(batch)  # delivered twice
        stray = json.loads(
            encode(CheckCompletedBatch(region="eu-west-1", items=[result(alone, 9, "eu-west-1", False)]))
        )
        stray["items"].append(json.loads(encode(result(alone, 9, "us-east-1", False))))
        await bus.publish_raw(RESULTS_EXCHANGE, CHECK_COMPLETED_BATCH, json.dumps(stray).encode())

        async def folded() -> bool:
            async with sessions() as session:
                states = (await session.scalars(select(AlertState.state))).all()
            last = [datetime.fromisoformat(state["last_slot"]) for state in states if state.get("last_slot")]
            return (
                last == [T0 + timedelta(minutes=len(VERDICTS) - 1)] * 5 and await bus.dead_letter_count() == 1
            )

        await eventually(folded, within=90, every=0.2)
        reference = await _effects(sessions, alone)
        channels = len(spec["alerts"])
        assert reference == (
            Counter(
                {("failure", i): 1 for i in range(channels)} | {("recovery", i): 1 for i in range(channels)}
            ),
            ["resolved"],
        )
        for check in batched:
            assert await _effects(sessions, check) == reference
        async with sessions() as session:
            assert (await session.scalar(select(func.count()).select_from(Incident))) == 5
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
