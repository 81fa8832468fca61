"""Results: idempotent batched writes, rollups, heartbeats, ack only after commit — SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from contracts.topology import RESULTS_EXCHANGE
from contracts.v1 import (
    AssertionOutcome,
    CheckCompleted,
    ResponseSample,
    RunError,
    RunMissed,
    RunMissedBatch,
    RunnerHeartbeat,
    Timings,
)
from services.common.bus.memory import MemoryBus
from services.common.db import rollups
from services.common.db.batches import Batcher
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run, Runner, RunRollup
from services.common.settings import Settings
from services.results.main import build
from tests.support.waiting import eventually

SLOT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def completed(
    run_id: uuid.UUID,
    check_id: uuid.UUID,
    region: str = "eu-north-1",
    ms: float = 12.5,
    status: str = "passed",
) -> CheckCompleted:
    return CheckCompleted(
        run_id=run_id,
        check_id=check_id,
        slot=SLOT,
        region=region,
        status=status,  # type: ignore[arg-type]
        started_at=SLOT,
        completed_at=SLOT + timedelta(milliseconds=ms),
        response=ResponseSample(status_code=201, headers={"connection": "close"}, body='{"id": 1}'),
        timings=Timings(dns_ms=0.4, connect_ms=0.3, ttfb_ms=ms - 1, total_ms=ms),
        error=None if status == "passed" else RunError(**{"class": "assertion", "message": "status"}),
        assertions=[
            AssertionOutcome(source="status_code", comparison="equals", target=201, observed=201, passed=True)
        ],
    )


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


async def _wait(predicate: Any, within: float = 10.0) -> None:
    await eventually(predicate, within=within, every=0.02)


async def test_runs_stored_once_with_rollups_and_heartbeats(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    check_id = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(30)]
    try:
        for index, run_id in enumerate(ids):
            message = completed(run_id, check_id, ms=10.0 + index, status="passed" if index % 3 else "failed")
            await bus.publish(message)
            await bus.publish(message)  # a redelivered duplicate
        missed_id = uuid.uuid4()
        await bus.publish(
            RunMissed(run_id=missed_id, check_id=check_id, slot=SLOT, region="us-east-1", reason="no_runner")
        )
        await bus.publish(
            RunnerHeartbeat(
                runner_id="r1", region="eu-north-1", runner_version="0.1.0", capacity=10, started_at=SLOT
            )
        )

        async def all_stored() -> bool:
            async with sessions() as session:
                count = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
                runners = (await session.execute(select(func.count()).select_from(Runner))).scalar_one()
            return bool(count == 31 and runners == 1)

        await _wait(all_stored)
        await asyncio.sleep(0.1)
        async with sessions() as session:
            assert (await session.execute(select(func.count()).select_from(Run))).scalar_one() == 31
            miss = await session.get(Run, missed_id)
            assert miss is not None
            assert (miss.status, miss.error_class) == ("missed", "no_runner")
            first = await session.get(Run, ids[0])
            assert first is not None
            assert first.status == "failed"
            assert first.stored_at is not None
            assert abs((datetime.now(UTC) - first.stored_at).total_seconds()) < 60
            assert first.total_ms == 10.0
            assert first.response is not None
            assert first.response["headers"] == {"connection": "close"}
            assert first.assertions[0]["observed"] == 201  # type: ignore[index]
            rows = (
                (await session.execute(select(RunRollup).where(RunRollup.region == "eu-north-1")))
                .scalars()
                .all()
            )
            assert len(rows) == 1
            rollup = rows[0]
            assert (rollup.total, rollup.passed, rollup.failed, rollup.responded) == (30, 20, 10, 30)
            assert rollup.sum_ms == pytest.approx(sum(10.0 + i for i in range(30)))
            assert sum(rollup.latency_hist.values()) == 30
            p50 = rollups.percentile(rollup.latency_hist, 0.5)
            assert p50 is not None
            assert 20 <= p50 <= 30
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


async def test_a_batch_of_shed_runs_is_one_missed_row_each_even_when_redelivered(db_url: str) -> None:
    """The router sheds many runs in one message: each item becomes its own ``missed`` row with its
    reason, and the batch delivered again (or overlapping a single RunMissed) adds nothing."""
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(Settings(results_batch_ms=20), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    check_id = uuid.uuid4()
    items = [
        RunMissed(
            run_id=uuid.uuid4(),
            check_id=check_id,
            slot=SLOT + timedelta(seconds=index),
            region="eu-north-1",
            reason="overloaded",
            detail="region eu-north-1 behind by 2.1 s",
        )
        for index in range(40)
    ]
    try:
        await bus.publish(RunMissedBatch(items=items))
        await bus.publish(RunMissedBatch(items=items[::-1]))
        await bus.publish(items[0])

        async def stored() -> bool:
            async with sessions() as session:
                count = (await session.execute(select(func.count()).select_from(Run))).scalar_one()
            return bool(count == 40)

        await _wait(stored)
        await asyncio.sleep(0.1)
        async with sessions() as session:
            rows = (await session.execute(select(Run.status, Run.error_class, Run.error_message))).all()
        assert len(rows) == 40
        assert set(rows) == {("missed", "overloaded", "region eu-north-1 behind by 2.1 s")}
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


async def test_failed_commit_fails_every_caller_so_the_bus_redelivers() -> None:
    calls: list[int] = []

    async def broken(items: list[tuple[str, Any]]) -> None:
        calls.append(len(items))
        raise RuntimeError("constraint violated")

    batcher = Batcher(broken, max_items=10, max_wait_ms=5)
    await batcher.start()
    try:
        results = await asyncio.gather(
            *(batcher.submit("run", {"n": n}) for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(result, RuntimeError) for result in results)
        # split down to single items before any is failed: 5 → 2 + 3 → 1 + 1 + 1 + 2 → 1 + 1
        assert sum(1 for size in calls if size == 1) == 5
    finally:
        await batcher.stop()


async def test_a_poison_item_fails_alone_and_the_rest_of_its_batch_commits() -> None:
    committed: list[int] = []

    async def flush(items: list[tuple[str, Any]]) -> None:
        if any(item["n"] == 7 for _, item in items):
            raise ValueError("value too long for type character varying(40)")
        committed.extend(item["n"] for _, item in items)

    batcher = Batcher(flush, max_items=100, max_wait_ms=20)
    await batcher.start()
    try:
        results = await asyncio.gather(
            *(batcher.submit("run", {"n": n}) for n in range(20)), return_exceptions=True
        )
    finally:
        await batcher.stop()
    failed = [n for n, result in enumerate(results) if isinstance(result, ValueError)]
    assert failed == [7]
    assert sorted(committed) == [n for n in range(20) if n != 7]


async def test_batches_group_many_messages() -> None:
    sizes: list[int] = []

    async def flush(items: list[tuple[str, dict[str, Any]]]) -> None:
        sizes.append(len(items))

    batcher = Batcher(flush, max_items=100, max_wait_ms=20)
    await batcher.start()
    try:
        await asyncio.gather(*(batcher.submit("run", {"n": n}) for n in range(250)))
    finally:
        await batcher.stop()
    assert sum(sizes) == 250
    assert len(sizes) <= 5


@pytest.mark.parametrize(
    ("values", "q", "low", "high"),
    [
        ([5.0] * 100, 0.5, 3, 5),
        ([1.0] * 50 + [1000.0] * 50, 0.95, 750, 1000),
        ([12.0, 14.0, 480.0], 0.5, 10, 15),
    ],
    ids=["flat", "bimodal-p95", "small"],
)
def test_histogram_percentiles(values: list[float], q: float, low: float, high: float) -> None:
    rollup = rollups.empty()
    for value in values:
        rollups.add_run(rollup, "passed", value, True)
    result = rollups.percentile(rollup["latency_hist"], q)
    assert result is not None
    assert low <= result <= high


async def test_malformed_result_is_dead_lettered_and_service_keeps_storing(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(Settings(results_batch_ms=5), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    try:
        await bus.publish_raw(
            RESULTS_EXCHANGE, "check.completed.v1", b'{"kind": "check.completed", "oops": 1}'
        )
        await bus.publish_raw(RESULTS_EXCHANGE, "check.completed.v1", b"not json at all")
        run_id = uuid.uuid4()
        await bus.publish(completed(run_id, uuid.uuid4()))

        async def stored() -> bool:
            async with sessions() as session:
                return await session.get(Run, run_id) is not None

        await _wait(stored)
        assert await bus.dead_letter_count() == 2
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()


async def test_rollups_merge_across_batches_and_many_keys(db_url: str) -> None:
    from services.results.rows import completed_row
    from services.results.store import write_runs

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    checks = [uuid.uuid4() for _ in range(3)]
    try:
        for batch in range(2):
            rows = [
                completed_row(completed(uuid.uuid4(), check, region=region, ms=100.0 * (batch + 1)))
                for check in checks
                for region in ("us-east-1", "eu-north-1")
                for _ in range(4)
            ]
            async with sessions() as session, session.begin():
                inserted = await write_runs(session, rows)
            assert len(inserted) == 24
        async with sessions() as session:
            found = (await session.execute(select(RunRollup))).scalars().all()
        assert len(found) == 6
        for rollup in found:
            assert (rollup.total, rollup.passed) == (8, 8)
            assert rollup.sum_ms == pytest.approx(4 * 100.0 + 4 * 200.0)
            assert rollup.latency_hist == {"100": 4, "200": 4}
    finally:
        await engine.dispose()


async def test_stop_flushes_what_is_pending_and_returns() -> None:
    flushed: list[int] = []

    async def flush(items: list[tuple[str, dict[str, Any]]]) -> None:
        flushed.append(len(items))

    batcher = Batcher(flush, max_items=100, max_wait_ms=10_000)
    await batcher.start()
    waiting = [asyncio.create_task(batcher.submit("run", {"n": n})) for n in range(3)]
    await asyncio.sleep(0.05)
    await asyncio.wait_for(batcher.stop(), 5)
    assert flushed == [3]
    await asyncio.gather(*waiting)


async def test_retention_removes_old_runs_and_rollups_only(db_url: str) -> None:
    from services.results.retention import purge_once
    from services.results.rows import completed_row
    from services.results.store import write_runs

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    check = uuid.uuid4()
    now = datetime.now(UTC)
    old = [completed(uuid.uuid4(), check) for _ in range(7)]
    fresh = [completed(uuid.uuid4(), check) for _ in range(3)]
    rows = [
        {**completed_row(m), "completed_at": now - timedelta(days=40), "slot": now - timedelta(days=40)}
        for m in old
    ] + [{**completed_row(m), "completed_at": now, "slot": now} for m in fresh]
    try:
        async with sessions() as session, session.begin():
            await write_runs(session, rows)
        assert await purge_once(sessions, retention_days=30, batch=3) == 7
        async with sessions() as session:
            left = set((await session.execute(select(Run.run_id))).scalars().all())
            buckets = (await session.execute(select(RunRollup.bucket))).scalars().all()
        assert left == {m.run_id for m in fresh}
        assert all(bucket > now - timedelta(days=31) for bucket in buckets)
        assert len(buckets) == 1
        assert await purge_once(sessions, retention_days=30) == 0
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_a_database_outage_holds_results_unacked_and_loses_none(pg_url: str) -> None:
    """PostgreSQL behind a proxy that is cut for 3 s while results keep arriving: every run is stored
    once afterwards and nothing is dead-lettered."""
    from urllib.parse import urlsplit

    from tests.support.proxy import TcpProxy

    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    engine = make_engine(pg_url.replace(f":{parts.port}/", f":{proxy.port}/"))
    sessions = make_sessionmaker(engine)
    bus = MemoryBus()
    service = build(Settings(results_batch_ms=10), bus, sessions)
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()
    check = uuid.uuid4()
    sent: list[uuid.UUID] = []
    try:
        for phase in ("before", "during", "after"):
            if phase == "during":
                await proxy.cut()
            for _ in range(20):
                run_id = uuid.uuid4()
                sent.append(run_id)
                await bus.publish(completed(run_id, check))
                await asyncio.sleep(0.05)
            if phase == "during":
                await asyncio.sleep(2.0)
                await proxy.restore()

        async def all_stored() -> bool:
            async with sessions() as session:
                return (await session.execute(select(func.count()).select_from(Run))).scalar_one() == len(
                    sent
                )

        await _wait(all_stored, within=30)
        assert await bus.dead_letter_count() == 0
        async with sessions() as session:
            stored = set((await session.execute(select(Run.run_id))).scalars().all())
        assert stored == set(sent)
    finally:
        await bus.stop()
        await service.stop()
        await engine.dispose()
        await proxy.close()
