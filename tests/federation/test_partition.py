"""WAN partition: the link between the region and home is cut for 30 s while slots keep coming.

Results produced meanwhile wait in the region's outbox and are stored once the link is back; runs that
expired while buffered on home are stored as missed; every slot ends as exactly one row; the check
gets no incident from the outage. The shared home broker stays up: a TCP proxy between the region's
links and home is what goes down.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from services.common.region_management import ManagementApi
from services.common.region_status import region_side
from tests.federation.conftest import home_vhost
from tests.federation.world import REGION, federated_world, wait_for
from tests.support.proxy import TcpProxy
from tests.support.rabbit_node import RabbitNode

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow]

OUTAGE_S = float(os.environ.get("SEYMOUR_PARTITION_SECONDS", "30"))
CADENCE_S = 0.5
TARGET_DELAY_S = 1.5


async def test_partition_buffers_results_and_records_expired_runs_once(
    rabbit_url: str, pg_url: str, region_node: RabbitNode, region_vhost: str, wan: TcpProxy
) -> None:
    async with federated_world(
        node=region_node,
        home_url=rabbit_url,
        home_url_from_region=wan.url(home_vhost(rabbit_url)),
        pg_url=pg_url,
        region_vhost=region_vhost,
        regions=[REGION],
    ) as world:
        world.target.delay_s = TARGET_DELAY_S
        slots: list[datetime] = []
        stop = asyncio.Event()

        async def load() -> None:
            while not stop.is_set() and len(slots) < 400:
                slots.append((await world.publish_slot()).slot)
                await asyncio.sleep(CADENCE_S)

        loader = asyncio.create_task(load())
        try:
            await asyncio.sleep(3 * CADENCE_S + TARGET_DELAY_S)
            await wan.cut()
            cut_at = datetime.now(UTC)
            outbox_peak = 0
            ends = time.monotonic() + OUTAGE_S
            async with ManagementApi(world.region_api) as api:
                while time.monotonic() < ends:
                    _, side = await region_side(api)
                    outbox_peak = max(outbox_peak, side["outbox_results"] or 0)
                    await asyncio.sleep(1.0)
            restored_at = datetime.now(UTC)
            await wan.restore()
            await asyncio.sleep(2.0)
        finally:
            stop.set()
            await loader
        published = len(slots)

        async def every_slot_stored() -> bool:
            return len(await world.runs()) >= published

        drained = await wait_for(
            every_slot_stored, within=90, what="every slot stored after the link returned"
        )
        runs = await world.runs()
        statuses = Counter(run.status for run in runs)
        print(
            f"partition: outage={OUTAGE_S:.0f}s slots={published} {dict(statuses)} "
            f"outbox_peak={outbox_peak} drained_in={drained:.1f}s"
        )
        assert len(runs) == published == len({run.slot for run in runs})
        assert set(statuses) <= {"passed", "missed"}
        # Runs that could not cross in time expired on home and were recorded, not dropped.
        assert statuses["missed"] > 0
        assert {run.error_class for run in runs if run.status == "missed"} <= {"expired", "no_runner"}
        # Results made while the link was down were held in the region and stored after it returned.
        assert outbox_peak > 0
        held = [
            r
            for r in runs
            if r.status == "passed" and cut_at < r.completed_at.replace(tzinfo=UTC) < restored_at
        ]
        assert held
        assert statuses["passed"] > len(held)
        async with ManagementApi(world.region_api) as api:

            async def outbox_empty() -> bool:  # management stats refresh every 5 s
                return (await region_side(api))[1]["outbox_results"] == 0

            await wait_for(outbox_empty, within=15, what="the regional outbox drained", every=0.5)
        assert await world.incidents() == 0
