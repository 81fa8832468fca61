"""Shedding under overload on real RabbitMQ and PostgreSQL: the router, results and two home-served regions.

One region's runners take about 50 runs/s while 150 slots/s are offered; the other region keeps up. The
slow region's queue must stay near the router's bound instead of growing until runs expire, the excess
must be recorded as ``missed`` (``overloaded``) at once, the fast region must lose nothing, and every
slot × region must end as exactly one stored row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest
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
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.db.models import Run
from services.common.settings import Settings
from services.results.main import build as build_results
from services.router.main import build as build_router
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow]

SLOW, FAST = "local", "eu-north-1"
SPEC = CheckSpec(
    name="shed",
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
    """A region's runners: each run takes ``seconds`` (as many at once as the prefetch), then its result
    goes home."""

    def __init__(self, bus: RabbitBus, seconds: float) -> None:
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


async def _start(bus: RabbitBus, service: Any) -> None:
    for route in service.routes:
        bus.subscribe(route)
    await bus.start()
    await service.start()


async def test_twice_what_a_region_takes_is_shed_at_once_and_every_slot_is_stored_once(
    rabbit_url: str, pg_url: str
) -> None:
    engine = make_engine(pg_url)
    sessions = make_sessionmaker(engine)
    settings = Settings(
        broker_url=rabbit_url,
        router_shed_after=BOUND_S,
        router_shed_floor=FLOOR,
        run_expiry_min=5,
        run_expiry_max=5,
        results_batch_ms=20,
    )
    router_bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    results_bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    runner_bus = RabbitBus(rabbit_url, publish_timeout=5.0, stop_timeout=2.0)
    router = build_router(settings, router_bus)
    results = build_results(settings, results_bus, sessions)
    slow, fast = Runner(runner_bus, 0.04), Runner(runner_bus, 0.0)
    runner_bus.subscribe(Route(runner_queue(SLOW), {RunCheck: slow}, prefetch=2))  # ~50 runs/s
    runner_bus.subscribe(Route(runner_queue(FAST), {RunCheck: fast}, prefetch=64))
    slots: list[CheckDue] = []
    depths: list[int] = []
    try:
        await _start(results_bus, results)
        await _start(router_bus, router)
        await runner_bus.start()
        for region in (SLOW, FAST):
            await runner_bus.publish(
                RunnerHeartbeat(
                    runner_id=f"r-{region}",
                    region=region,
                    runner_version="test",
                    capacity=2,
                    started_at=utcnow(),
                    interval_s=1,
                )
            )
        await asyncio.sleep(0.5)  # the router has heard both heartbeats
        per_tick = round(OFFERED_PER_S * TICK)
        start = time.monotonic()
        for tick in range(round(SECONDS / TICK)):
            now = utcnow()
            batch = [
                CheckDue(check_id=uuid.uuid4(), slot=now, revision=1, spec=SPEC, epoch=1)
                for _ in range(per_tick)
            ]
            slots.extend(batch)
            await router_bus.publish(CheckDueBatch(items=batch))
            if tick % 4 == 0:
                depths.append(await runner_bus.queue_depth(runner_queue(SLOW).name))
            await asyncio.sleep(max(start + (tick + 1) * TICK - time.monotonic(), 0.0))
        expected = {run_id_for(due.check_id, due.slot, region) for due in slots for region in (SLOW, FAST)}

        async def rows() -> list[Any]:
            async with sessions() as session:
                return list(
                    (
                        await session.execute(
                            select(Run.run_id, Run.region, Run.status, Run.error_class, Run.error_message)
                        )
                    ).all()
                )

        async def all_stored() -> bool:
            return len(await rows()) >= len(expected)

        await eventually(all_stored, within=60, every=0.25)
        await asyncio.sleep(0.5)
        stored = await rows()
    finally:
        await runner_bus.stop()
        await router_bus.stop()
        await router.stop()
        await results_bus.stop()
        await results.stop()
        await engine.dispose()

    assert len(stored) == len(expected)  # exactly one row per slot × region
    assert {row.run_id for row in stored} == expected
    outcomes = Counter((row.region, row.status, row.error_class) for row in stored)
    offered = len(slots)
    shed = outcomes[(SLOW, "missed", "overloaded")]
    ran = outcomes[(SLOW, "passed", None)]
    # The slow region ran what its runners took (how many depends on this process's share of the CPU) and
    # the rest was shed at once, not left to expire in its queue.
    assert shed >= offered * 0.4, outcomes
    assert ran >= 25, outcomes
    assert outcomes[(SLOW, "missed", "expired")] <= offered * 0.1, outcomes
    # Its queue stayed near the bound (about 1 s of its work plus a sample's worth of slots), where
    # unshed it would have grown by ~100 runs each second of the offer.
    assert max(depths) <= FLOOR + 50 * BOUND_S + OFFERED_PER_S * 0.5, depths
    # The region that kept up ran nearly everything: it shares this one process's CPU with the router,
    # results and the slow region, so a moment's backlog past the bound may shed a few of its runs.
    assert outcomes[(FAST, "passed", None)] >= offered * 0.97, outcomes
    assert outcomes[(FAST, "missed", "expired")] == 0, outcomes
