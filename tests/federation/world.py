"""A home (router, results, alerts on the shared broker + PostgreSQL) and a region (a runner on the region
node), linked by ``seymour region connect``; helpers to publish slots and read what home stored."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from contracts.topology import HOME_BUFFER_PATTERN, HOME_BUFFER_POLICY, region_user
from contracts.v1 import CheckDue, CheckSpec, utcnow
from services import runtime
from services.cli.region import connect, grant
from services.common.db.models import Check, Incident, Run, Runner
from services.common.region_management import ManagementApi
from services.common.region_topology import BrokerAddress
from services.common.settings import Settings
from tests.federation.conftest import home_vhost, set_home_policy
from tests.support.rabbit_node import RabbitNode, with_credentials
from tests.support.servers import DemoTarget, serve
from tests.support.waiting import took

REGION = "eu-north-1"
OTHER = "us-west-2"


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.1
) -> float:
    """Poll ``condition`` until true; returns the seconds it took. Fails the test after ``within`` seconds."""
    return await took(condition, within=within, what=what, every=every)


@dataclass
class World:
    home: runtime.Runtime
    region: runtime.Runtime
    target: DemoTarget
    spec: CheckSpec
    check_id: uuid.UUID
    region_url: str
    region_api: BrokerAddress

    async def publish_slot(self, slot_offset: float = 0.0) -> CheckDue:
        """One scheduled slot of the check, as the scheduler would publish it."""
        due = CheckDue(
            check_id=self.check_id,
            slot=utcnow() + timedelta(seconds=slot_offset),
            revision=1,
            spec=self.spec,
            epoch=1,
        )
        await self.home.bus.publish(due)
        return due

    async def runs(self) -> list[Run]:
        async with self.home.sessions() as session:
            query = select(Run).where(Run.check_id == self.check_id)
            return list((await session.execute(query)).scalars().all())

    async def incidents(self) -> int:
        async with self.home.sessions() as session:
            query = select(func.count()).select_from(Incident).where(Incident.check_id == self.check_id)
            return int(await session.scalar(query) or 0)

    async def heartbeat_seen(self) -> bool:
        async with self.home.sessions() as session:
            return (await session.scalar(select(Runner).where(Runner.region == REGION))) is not None


@asynccontextmanager
async def region_account(home_url: str, region: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh account for ``region`` on the shared home broker, as ``seymour region grant`` makes it
    (suffixed: user names are broker-wide and other tests share this broker); deleted afterwards."""
    username = region_user(region, uuid.uuid4().hex[:8])
    password = uuid.uuid4().hex
    home = BrokerAddress.parse(home_url)
    await grant(region, home, username, password)
    try:
        yield username, password
    finally:
        async with ManagementApi(home) as api:
            await api.request("DELETE", f"/api/users/{urllib.parse.quote(username, safe='')}")


@asynccontextmanager
async def federated_world(
    *,
    node: RabbitNode,
    home_url: str,
    home_url_from_region: str,
    pg_url: str,
    region_vhost: str,
    regions: list[str],
    interval: int = 10,
    run_expiry: float = 3.0,
) -> AsyncIterator[World]:
    """Connect the region, start home and the regional runner; stop everything afterwards."""
    target = DemoTarget()
    app = web.Application()
    app.router.add_post("/api/cards", target.handle)
    set_home_policy(
        home_vhost(home_url),
        HOME_BUFFER_POLICY,
        HOME_BUFFER_PATTERN,
        '{"dead-letter-exchange": "seymour.runs.dlx"}',
    )
    region_url = node.amqp_url(region_vhost)
    region_api = BrokerAddress.parse(region_url, node.api_url)
    async with region_account(home_url, REGION) as account, serve(app) as base:
        await connect(
            REGION,
            BrokerAddress.parse(with_credentials(home_url_from_region, *account)),
            region_api,
            reconnect_delay=1.0,
            wait=20.0,
        )
        target.url = f"{base}/api/cards"
        spec = CheckSpec(
            name=f"fed-{uuid.uuid4().hex[:6]}",
            request={"method": "POST", "url": target.url, "body": {"title": "t", "listId": 1}},
            regions=regions,
            interval=interval,
        )
        common: dict[str, Any] = {"runner_stale_after": 3.0, "heartbeat_interval": 0.5}
        home_settings = Settings(
            broker_url=home_url,
            database_url=pg_url,
            run_expiry_min=run_expiry,
            run_expiry_max=run_expiry,
            results_batch_ms=20.0,
            **common,
        )
        region_settings = Settings(broker_url=region_url, region=REGION, runner_id="fed-runner-1", **common)
        home = await runtime.start(home_settings, ["router", "results", "alerts"])
        region = None
        try:
            check_id = uuid.uuid4()
            async with home.sessions() as session, session.begin():
                session.add(Check(id=check_id, name=spec.name, spec=spec.model_dump(mode="json"), revision=1))
            region = await runtime.start(region_settings, ["runner"])
            world = World(home, region, target, spec, check_id, region_url, region_api)
            await wait_for(world.heartbeat_seen, within=20, what="a regional heartbeat stored at home")
            yield world
        finally:
            if region is not None:
                await region.stop()
            await home.stop()
