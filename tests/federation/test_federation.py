"""Real federation: a second RabbitMQ node plays a region; its runner is attached only to it.

Runs published at home for that region are executed there, runs for other regions never reach it,
results and heartbeats reach the home database through the shovel.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import Any

import pytest

from contracts.topology import RUNS_EXCHANGE, region_runs_exchange, runner_queue
from services.common.region_management import ManagementApi
from services.common.region_status import region_side
from services.common.region_topology import RegionLink, home_buffer_queue
from tests.federation.conftest import home_vhost
from tests.federation.world import OTHER, REGION, federated_world, wait_for
from tests.support.rabbit_node import RabbitNode

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow]

SLOTS = 5


def home_bindings(vhost: str) -> list[tuple[str, str, str]]:
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_bindings", "-p", vhost, "source_name", "destination_name", "routing_key"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [tuple(line.split("\t")) for line in out.splitlines()[1:] if line.count("\t") == 2]  # type: ignore[misc]


async def test_runs_cross_only_to_their_region_and_results_reach_home(
    rabbit_url: str, pg_url: str, region_node: RabbitNode, region_vhost: str
) -> None:
    async with federated_world(
        node=region_node,
        home_url=rabbit_url,
        home_url_from_region=rabbit_url,
        pg_url=pg_url,
        region_vhost=region_vhost,
        regions=[REGION, OTHER],
    ) as world:
        # Another region served straight from home: its runs stay home (and, unconsumed, expire).
        await world.home.bus.declare_queue(runner_queue(OTHER))
        for _ in range(SLOTS):
            await world.publish_slot()

        async def all_stored() -> bool:
            return len(await world.runs()) == 2 * SLOTS

        await wait_for(all_stored, within=30, what="every run of both regions stored at home")
        runs = await world.runs()
        by_region = Counter((run.region, run.status) for run in runs)
        assert by_region == {(REGION, "passed"): SLOTS, (OTHER, "missed"): SLOTS}
        assert {run.error_class for run in runs if run.region == OTHER} == {"no_runner"}
        assert {run.runner_id for run in runs if run.region == REGION} == {"fed-runner-1"}
        # Only the region's own runs were ever made there; home bound only its key to the link.
        assert {hit["region"] for hit in world.target.hits} == {REGION}
        vhost = home_vhost(rabbit_url)
        bindings = home_bindings(vhost)
        exchange = region_runs_exchange(REGION)
        federation_keys = {
            key for source, dest, key in bindings if source == exchange and dest.startswith("federation: ")
        }
        assert federation_keys == {REGION}
        assert {key for source, dest, key in bindings if dest == exchange} == {REGION}
        assert any(
            dest == home_buffer_queue(REGION, home_vhost=vhost, region_vhost=region_vhost)
            for _, dest, _ in home_bindings(vhost)
        )
        async with ManagementApi(world.region_api) as api:
            region, side = await region_side(api)
        assert region == REGION
        assert side["runs_link"] == "running"
        assert side["results_link"] == "running"
        assert side["outbox_results"] == 0
        assert await world.incidents() == 0

        # `seymour region status`: home's view (its management API) joined with the region's own.
        from services.cli.region import status
        from services.common.region_topology import BrokerAddress

        async def region_row() -> dict[str, Any]:
            rows, notes = await status(
                BrokerAddress.parse(rabbit_url), world.region_api, pg_url, stale=30.0, dead=120.0
            )
            assert notes == []
            return next(item for item in rows if item["region"] == REGION)

        async def link_shown_up() -> bool:  # the management API refreshes consumer counts every 5 s
            return (await region_row())["runs_link"] == "up"

        await wait_for(link_shown_up, within=15, what="home's view of the runs link as up")
        row = await region_row()
        assert (row["buffered_runs"], row["results_link"]) == (0, "running")
        assert (row["health"], row["runners"]) == ("live", 1)


async def test_connect_is_idempotent(rabbit_url: str, region_node: RabbitNode, region_vhost: str) -> None:
    from services.cli.region import connect
    from services.common.region_topology import BrokerAddress

    local = BrokerAddress.parse(region_node.amqp_url(region_vhost), region_node.api_url)
    home = BrokerAddress.parse(rabbit_url)
    vhost = home_vhost(rabbit_url)
    assert (exchange := region_runs_exchange(REGION)) not in {source for source, _, _ in home_bindings(vhost)}
    first = await connect(REGION, home, local, home_api=home, reconnect_delay=1.0, wait=20.0)
    # With home's API (and no 'region grant'), connect declared the exchange the link reads on home.
    assert (RUNS_EXCHANGE, exchange, REGION) in home_bindings(vhost)
    async with ManagementApi(local) as api:
        before = await api.get("/api/definitions")
    second = await connect(REGION, home, local, home_api=home, reconnect_delay=1.0, wait=20.0)
    async with ManagementApi(local) as api:
        after = await api.get("/api/definitions")
    assert first["federation"] == second["federation"] == "running"
    assert _mine(before, region_vhost) == _mine(after, region_vhost)
    plan = RegionLink(REGION, home, local).plan()
    assert len(_mine(after, region_vhost)["queues"]) == 3
    assert sum(1 for step in plan if "/api/parameters/" in step.path) == 3


def _mine(definitions: dict[str, object], vhost: str) -> dict[str, list[object]]:
    keys = ("queues", "exchanges", "bindings", "policies", "parameters")
    out: dict[str, list[object]] = {}
    for key in keys:
        items = definitions.get(key) or []
        assert isinstance(items, list)
        out[key] = sorted(
            (repr(sorted(item.items())) for item in items if item.get("vhost") == vhost), key=str
        )
    return out
