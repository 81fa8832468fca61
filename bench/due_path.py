"""What one due slot costs on its way from the scheduler through RabbitMQ and the router to a runner queue.

Drains a fixed number of slots instead of offering a rate, so the figures are CPU per slot whatever else
the machine is doing (a rate bench on a shared, busy machine misses runs and then measures the misses):

1. publishes ``--slots`` slots for ``--checks`` checks to ``router.due`` on a fresh vhost, from this
   process, the way the scheduler does: one confirmed ``CheckDue`` per slot (``--batch 1``, all in
   flight at once like the scheduler's concurrent firings), or through the scheduler's outbox, which
   gathers slots into ``CheckDueBatch`` messages (``--batch 0``); this process's CPU per slot is the
   publishing side's cost;
2. starts one router process (``serve router``, from ``--cwd`` so another checkout's router can be
   measured against the same load) and waits until ``runner.<region>`` holds every run;
3. prints CPU µs per slot of the publisher, the router and the RabbitMQ node (the whole node: other
   load on it shows up there), and the router's wall-clock drain rate.

    .venv/bin/python -m bench.due_path --slots 20000 --batch 0
    .venv/bin/python -m bench.due_path --slots 20000 --batch 1 --cwd /path/to/other/checkout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aio_pika

from bench.pipeline import PG_ADMIN, cpu_seconds, rabbit_pid, sh, tear_down
from contracts.topology import ROUTER_DUE, runner_queue
from contracts.v1 import CheckDue, CheckSpec, utcnow
from services.common.bus.rabbit import RabbitBus
from services.scheduler.outbox import DueOutbox

REGION = "local"


def spec(index: int) -> CheckSpec:
    """A check like the pipeline bench's (two assertions, one region)."""
    return CheckSpec.model_validate(
        {
            "name": f"bench-{index:05d}",
            "request": {"url": "http://127.0.0.1:9/fast"},
            "assertions": [
                {"source": "status_code", "comparison": "equals", "target": 200},
                {"source": "json_body", "property": "$.ok", "comparison": "equals", "target": True},
            ],
            "regions": [REGION],
            "interval": 3600,
            "timeout": 10,
        }
    )


async def publish(url: str, slots: int, checks: int, batch: int) -> dict[str, float]:
    """Publish the slots; return this process's CPU and wall seconds for it."""
    specs = [spec(index) for index in range(checks)]
    sizes = [len(item.model_dump_json()) for item in specs]
    ids = [uuid.uuid4() for _ in range(checks)]
    bus = RabbitBus(url, instance="bench-due-path", publish_timeout=120.0)
    await bus.declare_queue(ROUTER_DUE)
    await bus.declare_queue(runner_queue(REGION))
    await bus.start()
    # Slots a minute ahead: every run is fresh when the router sees it, none expires during the bench.
    base = utcnow() + timedelta(seconds=60)
    outbox = DueOutbox(bus)
    try:
        cpu0, wall0 = time.process_time(), time.monotonic()

        async def fire(number: int) -> None:
            index = number % checks
            due = CheckDue(
                check_id=ids[index],
                slot=base + timedelta(milliseconds=number),
                revision=1,
                spec=specs[index],
                epoch=1,
            )
            if batch == 0:
                await outbox.send(due, sizes[index])
            else:
                await bus.publish(due, mandatory=True)

        step = 1000
        for start in range(0, slots, step):
            await asyncio.gather(*(fire(number) for number in range(start, min(start + step, slots))))
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    finally:
        await outbox.close()
        await bus.stop()
    return {"cpu": cpu, "wall": wall, "batches": float(outbox.batches)}


async def depth(url: str, queue: str) -> int:
    """Messages ready in ``queue`` (a passive declare on a connection of its own)."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await connection.close()


def main() -> None:
    """Run the bench and print CPU per slot."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--slots", type=int, default=20_000)
    parser.add_argument("--checks", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=0, help="0: the scheduler's outbox; 1: one per message")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="checkout whose router is measured")
    parser.add_argument("--within", type=float, default=300.0, help="give up after this many seconds")
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    vhost = f"seymour-due-{tag}"
    database = f"seymour_due_{tag}"
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")},
        "SEYMOUR_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
        "SEYMOUR_BROKER_URL": url,
        "SEYMOUR_LOG_LEVEL": "WARNING",
    }
    sh("psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{database}"')
    sh("rabbitmqctl", "-q", "add_vhost", vhost)
    sh("rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    router: subprocess.Popen[bytes] | None = None
    log = Path(f"/tmp/seymour-due-{tag}.log")
    try:
        broker = rabbit_pid()
        rabbit0 = cpu_seconds(broker)
        published = asyncio.run(publish(url, args.slots, args.checks, args.batch))
        rabbit_publish = cpu_seconds(broker) - rabbit0
        with log.open("wb") as sink:
            router = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "serve", "router", "--no-migrate"],
                cwd=args.cwd,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        # Measured from the first routed run on, so the router's start-up (imports, connecting) is left out.
        deadline = time.monotonic() + args.within
        first = 0
        while first == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
            first = asyncio.run(depth(url, runner_queue(REGION).name))
        router0, rabbit1, wall1 = cpu_seconds(router.pid), cpu_seconds(broker), time.monotonic()
        routed = first
        while routed < args.slots and time.monotonic() < deadline:
            time.sleep(0.5)
            routed = asyncio.run(depth(url, runner_queue(REGION).name))
        drained = time.monotonic() - wall1
        router_cpu = cpu_seconds(router.pid) - router0
        rabbit_route = cpu_seconds(broker) - rabbit1
        measured = max(routed - first, 1)
    finally:
        tear_down([] if router is None else [router], database, vhost)
    per = 1e6 / args.slots
    figures: dict[str, Any] = {
        "slots": args.slots,
        "routed": routed,
        "batch": args.batch,
        "messages": int(published["batches"]) if args.batch == 0 else args.slots,
        "publisher_us_per_slot": round(published["cpu"] * per, 1),
        "rabbitmq_us_per_slot_publishing": round(rabbit_publish * per, 1),
        "router_us_per_slot": round(router_cpu * 1e6 / measured, 1),
        "rabbitmq_us_per_slot_routing": round(rabbit_route * 1e6 / measured, 1),
        "router_slots_per_s_wall": round(measured / drained, 1),
    }
    print(f"slots {args.slots} routed {routed} in {figures['messages']} messages (batch={args.batch})")
    print(
        f"CPU µs per slot: publisher {figures['publisher_us_per_slot']}"
        f"  rabbitmq(publish) {figures['rabbitmq_us_per_slot_publishing']}"
        f"  router {figures['router_us_per_slot']} (after start-up)"
        f"  rabbitmq(route) {figures['rabbitmq_us_per_slot_routing']}"
    )
    print(f"router drained {figures['router_slots_per_s_wall']} slots/s (wall clock, shared machine)")
    print("json " + json.dumps(figures))


if __name__ == "__main__":
    main()
