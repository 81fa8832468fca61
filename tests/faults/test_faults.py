"""The fault suite: faults under steady load, each stated as one row of figures, each held to the invariants.

One world (every service its own OS process, three regions, 10 checks every second from each region =
30 runs/s, each check alerting a webhook) takes the faults one after the other. Each row: slots expected ·
stored once · stored twice · lost · missed by reason · dead-lettered · false incidents · transitions sent
per channel · time to recover (from the fault's end until every region has stored a passed run of a slot
after it). Invariants, for every row: nothing stored twice, nothing lost (a slot that could not run is
``missed`` with its reason), dead letters only for the poison we sent, no incident and no notification
caused by our own fault, and recovery within :data:`RECOVERY_S`.

Scaled for two shared cores: 30 runs/s rather than 200, PostgreSQL down 20 s rather than 60, the broker
link cut for 15 s (connections reset and refused, like a restart; the broker's durable state survives as it
would a restart's), 8 runner kills rather than 25. Run with ``-s`` to see the table;
``SEYMOUR_FAULTS=postgres_down,poison`` runs only the scenarios named.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import aio_pika
import pytest
from sqlalchemy.engine import make_url

from contracts.topology import CHECK_COMPLETED, MAX_MESSAGE_BYTES, RESULTS_EXCHANGE
from contracts.v1 import utcnow
from tests.faults.world import (
    MISSED_REASONS,
    REGIONS,
    TOKEN,
    Row,
    World,
    base_env,
    flaky_receiver,
    proxied,
    started,
)
from tests.support.api import Client
from tests.support.metrics import probe
from tests.support.processes import fleet, free_port
from tests.support.proxy import TcpProxy
from tests.support.servers import demo_check, demo_target, eventually, receiver

pytestmark = [pytest.mark.rabbit, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

LOAD_CHECKS = 10
PG_DOWN_S = 20.0
BROKER_DOWN_S = 15.0
RUNNER_KILLS = 8
SCHEDULER_FROZEN_S = 15.0
DEPENDENCIES_DOWN_S = 5.0
AFTER_S = 8.0
RECOVERY_S = 30.0
#: Results and alerts both consume the results exchange: a poison message there dies once in each queue.
POISON_QUEUES = 2


async def before(world: World) -> dict[str, int]:
    return {
        "dlq_before": await world.dead_letters(),
        "incidents_before": await world.incidents(),
        "sent_before": len(world.sink.events()),
    }


async def postgres_down(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    await world.pg_proxy.cut()
    await asyncio.sleep(PG_DOWN_S)  # the outage itself
    await world.pg_proxy.restore()
    restored = utcnow()
    await asyncio.sleep(AFTER_S)  # steady load after it
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure(
        f"PostgreSQL down {PG_DOWN_S:.0f} s", start, end, restored_at=restored, **counts
    )


async def broker_down(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    await world.rabbit_proxy.cut()
    await asyncio.sleep(BROKER_DOWN_S)  # the outage itself
    await world.rabbit_proxy.restore()
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure(
        f"broker down {BROKER_DOWN_S:.0f} s", start, end, restored_at=restored, **counts
    )


async def runner_killed(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    label = f"runner-{REGIONS[0]}"
    for _ in range(RUNNER_KILLS):
        await world.kill(label, signal.SIGKILL)
        world.start(label)
        await asyncio.sleep(2.5)  # it starts, takes runs, and is killed in the middle of them
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure(f"runner SIGKILL x{RUNNER_KILLS}", start, end, restored_at=restored, **counts)


POISON = [
    b"{ not json",
    b'{"kind": "no.such.kind", "version": 1}',
    b'{"kind": "check.completed", "version": 99}',
    b"[" + b"1," * (MAX_MESSAGE_BYTES // 2) + b"1]",
]


async def poison(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    connection = await aio_pika.connect(world.rabbit_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(RESULTS_EXCHANGE)
        for body in POISON:
            await exchange.publish(aio_pika.Message(body, user_id="guest"), routing_key=CHECK_COMPLETED)
    await asyncio.sleep(AFTER_S)
    restored = utcnow()
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored
    row = await world.measure(f"poison messages x{len(POISON)}", start, end, restored_at=fault_at, **counts)
    row.notes += f"; expected dead letters {len(POISON) * POISON_QUEUES}"
    return row


async def sigterm_all(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    codes = await world.stop_all()
    assert codes == dict.fromkeys(codes, 0), {k: world.fleet.log_tail(k) for k, v in codes.items() if v}
    await started(world)
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure("SIGTERM every service", start, end, restored_at=restored, **counts)


async def scheduler_killed(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    leader = await world.leader()
    await world.kill(leader, signal.SIGKILL)
    world.start(leader)  # back as the standby
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    assert await world.leader() != leader, "the standby took over"
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure("scheduler leader SIGKILL", start, end, restored_at=restored, **counts)


async def scheduler_frozen(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    leader = await world.leader()
    pid = world.fleet.procs[leader].pid
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(SCHEDULER_FROZEN_S)  # frozen: the standby takes over once PostgreSQL drops its lock
    os.kill(pid, signal.SIGCONT)
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    assert await world.leader() != leader, "the standby took over and the woken leader stepped down"
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure(
        f"scheduler SIGSTOP {SCHEDULER_FROZEN_S:.0f} s", start, end, restored_at=restored, **counts
    )


async def started_before_dependencies(world: World) -> Row:
    counts = await before(world)
    fault_at = utcnow()
    codes = await world.stop_all()
    assert codes == dict.fromkeys(codes, 0), {k: world.fleet.log_tail(k) for k, v in codes.items() if v}
    await world.pg_proxy.cut()
    await world.rabbit_proxy.cut()
    for label in world.labels():
        world.start(label)

    async def all_waiting() -> bool:
        states = [await probe(port, "/readyz") for port in world.ops_ports.values()]
        return all(state == 503 for state in states)

    await eventually(all_waiting, within=60, every=0.5, what="every process up, alive and not ready")
    await asyncio.sleep(DEPENDENCIES_DOWN_S)  # they wait, they do not crash-loop
    world.assert_alive()
    assert all([await probe(port, "/livez") == 200 for port in world.ops_ports.values()])
    await world.pg_proxy.restore()
    await world.rabbit_proxy.restore()

    async def all_ready() -> bool:
        states = [await probe(port, "/readyz") for port in world.ops_ports.values()]
        return all(state == 200 for state in states)

    await eventually(all_ready, within=60, every=0.5, what="every process ready once its dependencies are up")
    restored = utcnow()
    await asyncio.sleep(AFTER_S)
    world.assert_alive()
    start, end = fault_at - timedelta(seconds=3), restored + timedelta(seconds=5)
    return await world.measure("start while deps down", start, end, restored_at=restored, **counts)


async def receivers_flaky(world: World) -> Row:
    """A check really fails and recovers while its webhook answers 429 (Retry-After), then 500s."""
    counts = await before(world)
    fault_at = utcnow()
    async with demo_target() as failing, flaky_receiver() as hook:
        spec = demo_check(failing.url, hook.url, interval=1, name="fault-alerting")
        spec["assertions"] = [a for a in spec["assertions"] if a["source"] != "response_time"]
        created = await world.api.ok("POST", "/api/v1/checks", spec)
        hook.script = [(429, {"Retry-After": "1"}), (500, {}), (503, {})]
        failing.status = 500
        await eventually(
            lambda: "failure" in hook.events(),
            within=60,
            every=0.5,
            what="the failure notification delivered",
        )
        failing.status = 201
        hook.script = [(500, {}), (429, {"Retry-After": "1"})]
        await eventually(
            lambda: "recovery" in hook.events(),
            within=60,
            every=0.5,
            what="the recovery notification delivered",
        )
        restored = utcnow()
        await asyncio.sleep(AFTER_S)  # no repeat of either
        world.assert_alive()
        start, end = fault_at - timedelta(seconds=3), restored
        row = await world.measure("alert receivers 429/500", start, end, restored_at=fault_at, **counts)
        await world.api.call("DELETE", f"/api/v1/checks/{created['id']}")
    row.false_incidents -= 1  # the one incident this scenario caused on purpose
    row.transitions = Counter(hook.events())
    attempts = Counter(status for _event, status in hook.attempts)
    row.notes += f"; webhook attempts by answer {dict(sorted(attempts.items()))}"
    return row


SCENARIOS: list[Callable[[World], Awaitable[Row]]] = [
    postgres_down,
    broker_down,
    runner_killed,
    poison,
    sigterm_all,
    scheduler_killed,
    scheduler_frozen,
    started_before_dependencies,
    receivers_flaky,
]


def violations(row: Row) -> list[str]:
    """What in ``row`` breaks the invariants."""
    problems = []
    if row.stored_twice:
        problems.append(f"{row.stored_twice} stored twice")
    if row.lost:
        problems.append(f"{row.lost} lost")
    if set(row.missed) - MISSED_REASONS:
        problems.append(f"missed for unexpected reasons {set(row.missed) - MISSED_REASONS}")
    dead = len(POISON) * POISON_QUEUES if row.scenario.startswith("poison") else 0
    if row.dead_lettered != dead:
        problems.append(f"{row.dead_lettered} dead-lettered, expected {dead}")
    if row.false_incidents:
        problems.append(f"{row.false_incidents} incidents opened by our own fault")
    sent = {"failure": 1, "recovery": 1} if row.scenario.startswith("alert receivers") else {}
    if dict(row.transitions) != sent:
        problems.append(f"notifications delivered {dict(row.transitions)}, expected {sent}")
    if row.recover_s is None or row.recover_s > RECOVERY_S:
        problems.append(f"recovery {row.recover_s} s (limit {RECOVERY_S} s)")
    return problems


async def test_faults_under_load_keep_every_slot_once(tmp_path: Path, pg_url: str, rabbit_url: str) -> None:
    database = make_url(pg_url)
    broker = make_url(rabbit_url.replace("amqp://", "postgresql://", 1))
    pg_proxy = TcpProxy(database.host or "127.0.0.1", database.port or 5432)
    rabbit_proxy = TcpProxy(broker.host or "127.0.0.1", broker.port or 5672)
    await pg_proxy.start()
    await rabbit_proxy.start()
    api_port = free_port()
    vhost = rabbit_url.rsplit("/", 1)[1]
    env = base_env(proxied(pg_url, pg_proxy.port), rabbit_proxy.url(vhost), api_port)
    rows: list[Row] = []
    async with demo_target() as target, receiver() as sink:
        with fleet(tmp_path, **env) as running:
            world = World(
                running,
                pg_url,
                rabbit_url,
                pg_proxy,
                rabbit_proxy,
                target,
                sink,
                Client(f"http://127.0.0.1:{api_port}", TOKEN),
                api_port,
            )
            try:
                await started(world)
                await world.add_checks(LOAD_CHECKS)
                await asyncio.sleep(5.0)  # steady load before the first fault
                only = {name for name in os.environ.get("SEYMOUR_FAULTS", "").split(",") if name}
                for scenario in SCENARIOS:
                    if only and scenario.__name__ not in only:
                        continue
                    rows.append(await scenario(world))
                    print(rows[-1].line(), flush=True)
            finally:
                await world.stop_all()
                if world.engine is not None:
                    await world.engine.dispose()
                await pg_proxy.close()
                await rabbit_proxy.close()
    table = "\n".join(
        [Row.HEADER, *(row.line() for row in rows), *(f"{r.scenario}: {r.notes}" for r in rows)]
    )
    print("\n" + table)
    broken = {row.scenario: [*violations(row), row.notes] for row in rows if violations(row)}
    assert not broken, f"{broken}\n{table}"
    assert rows
