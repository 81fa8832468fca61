"""Shedding under overload on the in-process bus of ``seymour up``: router, results on SQLite and two
regions' runners all in one process, as embedded mode runs them.

One region's runner takes about 50 runs/s while 150 slots/s are offered; the other keeps up. Without a
queue depth to read, the router published everything and the slow region's queue grew in memory until its
runs expired (started seconds late first). Now the excess must be recorded as ``missed`` (``overloaded``)
at once, the queue must stay near the bound, the fast region must lose nothing, and every slot × region
must end as exactly one stored row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from contracts.topology import runner_queue
from contracts.v1 import (
    CheckCompleted,
    CheckDue,
    CheckDueBatch,
    CheckSpec,
    RunCheck,
    RunnerHeartbeat,
    run_id_for,
    utcnow,
)
from services.common.bus import Delivery, Route
from services.common.bus.memory import MemoryBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run
from services.common.settings import Settings
from services.results.main import build as build_results
from services.router.main import build as build_router
from services.router.probe import InProcessProbe
from tests.support.waiting import eventually

SLOW, FAST = "local", "eu-north-1"
SPEC = CheckSpec(
    name="shed-in-process",
    request={"url": "http://127.0.0.1:9/"},  # type: ignore[arg-type]
    regions=[SLOW, FAST],
    interval=60,
)
OFFERED_PER_S = 150
SECONDS = 4.0
TICK = 0.05
BOUND_S = 1.0
FLOOR = 30


class Runner:
    """A region's runner: each run takes ``seconds`` (as many at once as the prefetch)."""

    def __init__(self, bus: MemoryBus, seconds: float) -> None:
        self.bus, self.seconds = bus, seconds

    async def __call__(self, run: RunCheck, delivery: Delivery) -> None:
        started = utcnow()
        await asyncio.sleep(self.seconds)
        await self.bus.publish(
            CheckCompleted(
                run_id=run.run_id,
                check_id=run.check_id,
                slot=run.slot,
                region=run.region,
                status="passed",
                started_at=started,
                completed_at=utcnow(),
            )
        )


async def test_the_in_process_bus_answers_queue_depths_like_a_broker() -> None:
    bus = MemoryBus()
    await bus.declare_queue(runner_queue(SLOW))
    probe = InProcessProbe(bus)
    assert await probe.queue_depth(runner_queue(SLOW).name) == 0
    await bus.start()
    try:
        due = CheckDue(check_id=uuid.uuid4(), slot=utcnow(), revision=1, spec=SPEC, epoch=1)
        run = RunCheck(
            run_id=run_id_for(due.check_id, due.slot, SLOW),
            check_id=due.check_id,
            slot=due.slot,
            region=SLOW,
            revision=1,
            spec=SPEC,
            expires_at=utcnow() + timedelta(seconds=30),
        )
        await bus.publish(run)
        assert await probe.queue_depth(runner_queue(SLOW).name) == 1
        try:
            await probe.queue_depth("no-such-queue")
        except LookupError:
            pass
        else:
            raise AssertionError("an undeclared queue must not read as empty")
    finally:
        await bus.stop()


async def test_twice_what_a_region_takes_is_shed_at_once_in_process(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    sessions = make_sessionmaker(engine)
    settings = Settings(
        broker_url="memory://",
        router_shed_after=BOUND_S,
        router_shed_floor=FLOOR,
        run_expiry_min=5,
        run_expiry_max=5,
        results_batch_ms=20,
    )
    bus = MemoryBus()
    router = build_router(settings, bus)
    results = build_results(settings, bus, sessions)
    slow, fast = Runner(bus, 0.04), Runner(bus, 0.0)
    bus.subscribe(Route(runner_queue(SLOW), {RunCheck: slow}, prefetch=2))  # ~50 runs/s
    bus.subscribe(Route(runner_queue(FAST), {RunCheck: fast}, prefetch=64))
    for service in (router, results):
        for route in service.routes:
            bus.subscribe(route)
    slots: list[CheckDue] = []
    depths: list[int] = []
    try:
        await bus.start()
        await results.start()
        await router.start()
        for region in (SLOW, FAST):
            await bus.publish(
                RunnerHeartbeat(
                    runner_id=f"r-{region}",
                    region=region,
                    runner_version="test",
                    capacity=2,
                    started_at=utcnow(),
                    interval_s=1,
                )
            )
        await asyncio.sleep(0.3)  # the router has heard both heartbeats
        per_tick = round(OFFERED_PER_S * TICK)
        start = time.monotonic()
        for tick in range(round(SECONDS / TICK)):
            now = utcnow()
            batch = [
                CheckDue(check_id=uuid.uuid4(), slot=now, revision=1, spec=SPEC, epoch=1)
                for _ in range(per_tick)
            ]
            slots.extend(batch)
            await bus.publish(CheckDueBatch(items=batch))
            if tick % 4 == 0:
                depths.append(await bus.queue_depth(runner_queue(SLOW).name))
            await asyncio.sleep(max(start + (tick + 1) * TICK - time.monotonic(), 0.0))
        expected = {run_id_for(due.check_id, due.slot, region) for due in slots for region in (SLOW, FAST)}

        async def rows() -> list[Any]:
            async with sessions() as session:
                return list(
                    (await session.execute(select(Run.run_id, Run.region, Run.status, Run.error_class))).all()
                )

        async def all_stored() -> bool:
            return len(await rows()) >= len(expected)

        await eventually(all_stored, within=60, every=0.25)
        await asyncio.sleep(0.5)
        stored = await rows()
    finally:
        await router.stop()
        await bus.stop()
        await results.stop()
        await engine.dispose()

    assert len(stored) == len(expected)  # exactly one row per slot × region
    assert {row.run_id for row in stored} == expected
    outcomes = Counter((row.region, row.status, row.error_class) for row in stored)
    offered = len(slots)
    assert outcomes[(SLOW, "missed", "overloaded")] >= offered * 0.4, outcomes
    assert outcomes[(SLOW, "passed", None)] >= 25, outcomes
    assert outcomes[(SLOW, "missed", "expired")] <= offered * 0.1, outcomes
    # The queue stayed near the bound (about 1 s of the slow runner's work plus a sample's worth of
    # slots), where unshed it would have grown by ~100 runs each second of the offer.
    assert max(depths) <= FLOOR + 50 * BOUND_S + OFFERED_PER_S * 0.5, depths
    # The region that keeps up shares this one event loop with everything else: a loop stalled for a
    # moment (a loaded machine) leaves its queue past the bound too, and a few of its runs are shed.
    assert outcomes[(FAST, "passed", None)] >= offered * 0.85, outcomes
    assert outcomes[(FAST, "missed", "expired")] == 0, outcomes
