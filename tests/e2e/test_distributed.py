"""End to end in distributed mode: every service its own OS process on real RabbitMQ and PostgreSQL.

The demo check runs from three regions (one runner process each), fails when the target slows past
500 ms, opens one incident with one webhook notification, and recovers. A malformed message is
dead-lettered while the services keep working. Each process reports what it did on its own /metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from contracts.topology import DEAD_LETTER_QUEUE, RESULTS_EXCHANGE
from tests.support.api import Client
from tests.support.metrics import probe, scrape, total
from tests.support.processes import Fleet, fleet, free_port
from tests.support.servers import demo_check, demo_target, receiver
from tests.support.waiting import eventually

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow]

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
TOKEN = "distributed-token"
#: The operations port of each process, by label.
OPS_PORTS: dict[str, int] = {}


@pytest.fixture
def services(tmp_path: Path, pg_url: str, rabbit_url: str) -> Iterator[tuple[Fleet, Client, str, str]]:
    port = free_port()
    env = {
        "SEYMOUR_DATABASE_URL": pg_url,
        "SEYMOUR_BROKER_URL": rabbit_url,
        "SEYMOUR_API_TOKEN": TOKEN,
        "SEYMOUR_PORT": str(port),
        "SEYMOUR_HEARTBEAT_INTERVAL": "1",
        "SEYMOUR_RESULTS_BATCH_MS": "10",
        "SEYMOUR_DATA_DIR": str(tmp_path / "data"),
        "SEYMOUR_ADMIN_PASSWORD": "distributed-password",
    }
    with fleet(tmp_path, **env) as running:
        OPS_PORTS.clear()

        def start(label: str, *args: str) -> None:
            OPS_PORTS[label] = free_port()
            running.start(label, *args, SEYMOUR_METRICS_PORT=str(OPS_PORTS[label]))

        for name in ("results", "alerts", "router", "api"):
            start(name, name, "--no-migrate")
        for region in REGIONS:
            start(f"runner-{region}", "runner", "--region", region)
        start("scheduler", "scheduler", "--no-migrate")
        yield running, Client(f"http://127.0.0.1:{port}", TOKEN), rabbit_url, pg_url


async def test_demo_check_across_processes(services: tuple[Fleet, Client, str, str]) -> None:
    running, api, broker, database = services

    async def api_up() -> bool:
        dead = [label for label, alive in running.alive().items() if not alive]
        assert not dead, {label: running.log_tail(label) for label in dead}
        try:
            status, _ = await api.call("GET", "/healthz")
        except OSError:
            return False
        return status == 200

    await eventually(api_up, within=60, what="the api process to answer")
    engine = create_async_engine(database)
    async with engine.connect() as connection:
        admins = (
            (await connection.execute(text("SELECT username FROM users WHERE role = 'admin'")))
            .scalars()
            .all()
        )
    await engine.dispose()
    assert admins == ["admin"], "the served api creates the first admin from SEYMOUR_ADMIN_PASSWORD"

    async def runners_live() -> bool:
        regions = (await api.ok("GET", "/api/v1/regions"))["items"]
        return all(r["live"] for r in regions if r["code"] in REGIONS)

    await eventually(runners_live, within=60, what=f"live runners in {REGIONS}")

    async with demo_target() as target, receiver() as sink:
        check = await api.ok("POST", "/api/v1/checks", demo_check(target.url, sink.url, interval=1))
        check_id = check["id"]

        async def passed_everywhere() -> bool:
            runs = await api.runs(check_id, status="passed")
            return {run["region"] for run in runs} == set(REGIONS)

        await eventually(passed_everywhere, within=30, what="passed runs from every region")
        run = (await api.runs(check_id, status="passed"))[0]
        observed = {(a["source"], a["property"]): a["observed"] for a in run["assertions"]}
        assert observed[("status_code", None)] == 201
        assert observed[("json_body", "$.title")] == "demo"
        assert observed[("header", "connection")] == "close"

        connection = await aio_pika.connect(broker)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(RESULTS_EXCHANGE)
            await exchange.publish(aio_pika.Message(b"{ not a message"), routing_key="check.completed.v1")

            async def dead_lettered() -> bool:
                queue = await channel.declare_queue(DEAD_LETTER_QUEUE, passive=True)
                return bool(queue.declaration_result.message_count)

            await eventually(dead_lettered, within=20, what="the malformed message in the dead-letter queue")

        target.delay_s = 0.6

        async def incident_open() -> object:
            return (await api.ok("GET", "/api/v1/incidents", state="open", check_id=check_id))["items"]

        await eventually(incident_open, within=30, what="an open incident")
        failed = await api.runs(check_id, status="failed")
        slow = next(a for a in failed[0]["assertions"] if a["source"] == "response_time")
        assert slow["passed"] is False
        assert slow["observed"] >= 500
        await eventually(
            lambda: sink.events().count("failure") == 1, within=20, what="one failure notification"
        )

        target.delay_s = 0.0
        await eventually(lambda: "recovery" in sink.events(), within=30, what="a recovery notification")
        assert sink.events().count("failure") == 1
        assert sink.events().count("recovery") == 1
        assert all(running.alive().values()), {
            k: running.log_tail(k) for k, v in running.alive().items() if not v
        }

        runs = await api.runs(check_id)
        assert len({r["run_id"] for r in runs}) == len(runs)
        await assert_each_process_reports_its_own_metrics()

    codes = running.stop_all()
    assert codes == dict.fromkeys(codes, 0), {k: running.log_tail(k) for k, v in codes.items() if v}


async def assert_each_process_reports_its_own_metrics() -> None:
    """The counters of a process are read from that process: the alerts process's notifications from the
    alerts process (the api's /metrics used to claim them and read 0 forever in this mode)."""
    for label, port in OPS_PORTS.items():
        assert await probe(port, "/readyz") == 200, f"{label} is ready"
    alerts = await scrape(OPS_PORTS["alerts"])
    assert total(alerts, "seymour_notifications_sent_total", channel="webhook", event="failure") == 1
    assert total(alerts, "seymour_messages_consumed_total", queue="alerts.evaluate") > 0
    results = await scrape(OPS_PORTS["results"])
    for region in REGIONS:
        assert total(results, "seymour_runs_total", region=region, status="passed") > 0
        assert total(results, "seymour_run_lag_seconds_count", region=region) > 0
    runner = await scrape(OPS_PORTS[f"runner-{REGIONS[0]}"])
    assert total(runner, "seymour_run_phase_seconds_count", region=REGIONS[0], phase="total") > 0
    assert total(runner, "seymour_messages_published_total", exchange=RESULTS_EXCHANGE) > 0
    scheduler = await scrape(OPS_PORTS["scheduler"])
    assert total(scheduler, "seymour_scheduler_leader") == 1
    assert total(scheduler, "seymour_scheduler_epoch") >= 1
    assert total(scheduler, "seymour_scheduler_slots_total", outcome="fired") > 0
    router = await scrape(OPS_PORTS["router"])
    depths = {dict(labels)["queue"] for name, labels in router if name == "seymour_queue_depth"}
    assert {DEAD_LETTER_QUEUE, "router.due"} <= depths
    assert total(router, "seymour_messages_consumed_total", queue="router.due") > 0
