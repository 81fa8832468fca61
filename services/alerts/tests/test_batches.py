"""Evaluation in batches: a batch folds into the same incidents and notifications as one result at a time,
and the same batch delivered again (a crash before its acks) queues no transition twice — SQLite and
PostgreSQL."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from sqlalchemy import select

from contracts.v1 import CheckCompleted, RunMissed
from contracts.v1.base import utcnow
from services.alerts.evaluator import Evaluator
from services.alerts.tests.conftest import all_channels, store_check
from services.alerts.tests.test_end_to_end import REGIONS, result
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import AlertState, Incident, Notification
from services.common.metrics import Registry


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def story(check_id: uuid.UUID) -> list[CheckCompleted | RunMissed]:
    """Every region passes, then fails for three slots (an incident), then passes again (recovery)."""
    verdicts = [True, True, False, False, False, True, True]
    return [
        result(check_id, slot, region, passed) for slot, passed in enumerate(verdicts) for region in REGIONS
    ]


async def _effects(sessions: object, check_id: uuid.UUID) -> tuple[Counter[tuple[str, int]], list[str], dict]:
    async with sessions() as session:  # type: ignore[operator]
        notes = (await session.scalars(select(Notification).where(Notification.check_id == check_id))).all()
        incidents = (await session.scalars(select(Incident).where(Incident.check_id == check_id))).all()
        state = await session.get(AlertState, check_id)
    return (
        Counter((note.transition, note.channel_index) for note in notes),
        sorted(incident.state for incident in incidents),
        dict(state.state) if state is not None else {},
    )


async def test_a_batch_folds_like_one_result_at_a_time_and_its_redelivery_adds_nothing(db_url: str) -> None:
    spec = all_channels("http://127.0.0.1:1", failure_threshold=2)
    one_by_one = await store_check(db_url, {**spec, "name": "one-by-one"})
    batched = await store_check(db_url, {**spec, "name": "batched"})
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    evaluator = Evaluator(sessions, MemoryBus(), base_url="http://x", clock=utcnow, metrics=Registry())
    try:
        for message in story(one_by_one):
            await evaluator.observe(message)
        batch = story(batched)
        await evaluator.observe_many(batch)
        notes, incidents, state = await _effects(sessions, batched)
        await evaluator.observe_many(batch)  # delivered again: the process died before acking
        again = await _effects(sessions, batched)
        reference = await _effects(sessions, one_by_one)
    finally:
        await engine.dispose()
    channels = len(spec["alerts"])
    assert notes == Counter(
        {("failure", i): 1 for i in range(channels)} | {("recovery", i): 1 for i in range(channels)}
    )
    assert incidents == ["resolved"]
    assert again == (notes, incidents, state)
    assert (reference[0], reference[1]) == (notes, incidents)
    same = ("last_slot", "failed_streak", "passed_streak", "incident", "flapping", "degraded")
    assert {k: reference[2][k] for k in same} == {k: state[k] for k in same}


async def test_a_batch_over_many_checks_commits_each_checks_state(db_url: str) -> None:
    spec = all_channels("http://127.0.0.1:1", failure_threshold=2)
    checks = [await store_check(db_url, {**spec, "name": f"check-{index}"}) for index in range(5)]
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    evaluator = Evaluator(sessions, MemoryBus(), base_url="http://x", clock=utcnow, metrics=Registry())
    try:
        interleaved = [
            message for messages in zip(*(story(c) for c in checks), strict=True) for message in messages
        ]
        await evaluator.observe_many(interleaved)
        for check_id in checks:
            notes, incidents, state = await _effects(sessions, check_id)
            assert sum(notes.values()) == 2 * len(spec["alerts"])
            assert incidents == ["resolved"]
            assert state["incident"] is None
    finally:
        await engine.dispose()
