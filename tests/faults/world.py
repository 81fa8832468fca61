"""A whole Seymour under steady load, every service its own OS process, behind cuttable links.

The database is the shared local server (a database of its own); the brokers are RabbitMQ nodes this suite
starts itself (:mod:`tests.faults.nodes`): home, and two regions (``eu-north-1``, ``ap-southeast-2``) each
behind its own node, linked to home as in production (federation for runs, shovels for results) over a WAN
link of its own; the third region's runner (home's local region) uses home's node directly. Processes
reach the database and home's node through :class:`~tests.support.proxy.TcpProxy` links: cutting a link
is, for every process, the server gone (connections reset, new ones refused). The database may sit on a
small filesystem of its own (:mod:`tests.faults.disk`) that a scenario fills. Home's node can also
really be stopped and started.
The proxies live on the test's event loop, so nothing here blocks it (process waits run in threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import aio_pika
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from conftest import PG_ADMIN_URL
from contracts.topology import DEAD_LETTER_QUEUE
from services.common.bus.dead_letters import DeadLetter
from services.common.bus.dead_letters import count as count_dead_letters
from services.scheduler.slots import slots_between
from tests.faults.disk import SmallDisk
from tests.faults.nodes import Node
from tests.support.api import Client
from tests.support.cpu import CpuMeter, Finder, PostgresBackends, ProcStat, per_run_ms, with_descendants
from tests.support.processes import Fleet, free_port
from tests.support.proxy import TcpProxy
from tests.support.servers import DemoTarget, Receiver, demo_check, serve
from tests.support.waiting import eventually

#: The regions behind their own RabbitMQ node, each linked to home over its own WAN link.
REGIONALS = ("eu-north-1", "ap-southeast-2")
#: Home's local region (its runner uses home's node) and the regions behind their own nodes.
REGIONS = ("us-east-1", *REGIONALS)
HOME_SERVICES = ("results", "alerts", "router", "api", "scheduler", "scheduler-standby")
TOKEN = "faults-token"
#: The reasons a slot may honestly end as missed under a fault we caused.
MISSED_REASONS = frozenset(
    {"no_leader", "leader_late", "not_published", "expired", "no_runner", "overloaded"}
)
#: Schedule→stored lag of a run once the world is back to normal (steady state is well under 1 s).
LAG_NORMAL_S = 3.0
#: A run that really ran (the rest of a slot's rows are ``missed``).
REAL_STATUSES = ("passed", "failed", "error")
#: The CPU group of the test process itself: the target, the links (TCP proxies), the receivers, probes.
SUITE_GROUP = "suite (target, links)"


@dataclass
class FlakyReceiver(Receiver):
    """A webhook receiver that answers from a script (status, headers) before it accepts; every attempt is
    kept, and only accepted notifications count as delivered."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    attempts: list[tuple[str, int]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        event = str(json.loads(await request.read()).get("event"))
        if self.script:
            status, headers = self.script.pop(0)
            self.attempts.append((event, status))
            return web.json_response({"error": "try later"}, status=status, headers=headers)
        self.attempts.append((event, 200))
        return await super().handle(request)


@asynccontextmanager
async def flaky_receiver() -> AsyncIterator[FlakyReceiver]:
    """A running :class:`FlakyReceiver`."""
    sink = FlakyReceiver()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    async with serve(app) as base:
        sink.url = f"{base}/hook"
        yield sink


@dataclass
class Row:
    """One line of the fault table."""

    scenario: str
    expected: int = 0
    stored_once: int = 0
    stored_twice: int = 0
    lost: int = 0
    missed: Counter[str] = field(default_factory=Counter)
    #: The same misses, by region.
    missed_by_region: dict[str, Counter[str]] = field(default_factory=dict)
    #: A region the fault did not touch (another region's link cut) and its misses: it must have none.
    bystander: str | None = None
    bystander_missed: int = 0
    dead_lettered: int = 0
    false_incidents: int = 0
    #: Notifications delivered, by channel and event (``hook-a failure``); twice the same is a violation.
    transitions: Counter[str] = field(default_factory=Counter)
    #: Seconds from the fault's end until every region stored a passed run of a later slot.
    recover_s: float | None = None
    #: Seconds from the fault's end until every queue (home's and the region's) had a consumer again.
    consumers_s: float | None = None
    #: Seconds from the fault's end after which every slot of every region was a run stored within
    #: :data:`LAG_NORMAL_S` of its slot.
    lag_s: float | None = None
    #: Real runs (passed, failed, error) of slots before the fault's end stored after it (results that
    #: waited), per second from the fault's end until the last of them was stored (``None`` if fewer than
    #: 2 waited). Misses recorded late are not work done and are not counted.
    drain_per_s: float | None = None
    #: How many real runs :attr:`drain_per_s` counts, and how many misses were recorded late beside them.
    drained: tuple[int, int] = (0, 0)
    #: CPU seconds each process group (a service, a RabbitMQ node, the database's backends, the suite's
    #: own process) spent from the scenario's start to its row, and the real runs stored meanwhile.
    cpu_s: dict[str, float] = field(default_factory=dict)
    real_runs: int = 0
    #: The notifications a scenario causes on purpose (a check it makes fail and recover), by channel.
    expected_sent: dict[str, int] = field(default_factory=dict)
    #: Whether the services said what the fault was, for a fault they must name (``None``: not asked).
    fault_named: bool | None = None
    notes: str = ""

    HEADER = (
        f"{'scenario':<30} {'expected':>8} {'once':>6} {'twice':>5} {'lost':>5} {'missed (by reason)':<40} "
        f"{'dlq':>4} {'false inc':>9} {'sent per channel':<34} {'recover':>8} {'consumers':>9} "
        f"{'lag ok':>7} {'drained (real runs)':>30} {'cpu/run':>8}"
    )

    def line(self) -> str:
        missed = ", ".join(f"{reason} {n}" for reason, n in sorted(self.missed.items())) or "0"
        sent = ", ".join(f"{channel} {n}" for channel, n in sorted(self.transitions.items())) or "0"
        return (
            f"{self.scenario:<30} {self.expected:>8} {self.stored_once:>6} {self.stored_twice:>5} "
            f"{self.lost:>5} {missed:<40} {self.dead_lettered:>4} {self.false_incidents:>9} {sent:<34} "
            f"{_seconds(self.recover_s):>8} {_seconds(self.consumers_s):>9} {_seconds(self.lag_s):>7} "
            f"{self.drain():>30} {self.cpu_per_run():>8}"
        )

    def drain(self) -> str:
        """The drain after the fault: real runs per second (how many, and the misses stored beside them)."""
        if self.drain_per_s is None:
            return "-"
        runs, misses = self.drained
        return f"{self.drain_per_s:.0f}/s ({runs} runs, +{misses} missed)"

    def cpu_per_run(self) -> str:
        """Milliseconds of CPU, all process groups together, per real run stored during the scenario."""
        if not self.real_runs or not self.cpu_s:
            return "-"
        return f"{1000 * sum(self.cpu_s.values()) / self.real_runs:.1f} ms"

    def cpu_note(self) -> str:
        """The CPU per real run of each process group, costliest first."""
        return cost_note(self.cpu_s, self.real_runs)

    def markdown(self) -> str:
        """The row as a line of the Markdown table a closing note quotes."""
        missed = ", ".join(f"{reason} {n}" for reason, n in sorted(self.missed.items())) or "0"
        sent = ", ".join(f"{channel} {n}" for channel, n in sorted(self.transitions.items())) or "0"
        cells = [
            self.scenario,
            str(self.expected),
            str(self.stored_once),
            str(self.stored_twice),
            str(self.lost),
            missed,
            str(self.dead_lettered),
            str(self.false_incidents),
            sent,
            _seconds(self.recover_s),
            _seconds(self.consumers_s),
            _seconds(self.lag_s),
            self.drain(),
            self.cpu_per_run(),
        ]
        return "| " + " | ".join(cells) + " |"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def cost_note(spent: dict[str, float], runs: int) -> str:
    """``CPU ms per real run (N runs): total T; results 0.7, ...``, costliest group first."""
    per_run = per_run_ms(spent, runs)
    if not per_run:
        return f"CPU: {sum(spent.values()):.1f} s for no real run"
    groups = ", ".join(f"{group} {ms:.2f}" for group, ms in sorted(per_run.items(), key=lambda kv: -kv[1]))
    return f"CPU ms per real run ({runs} runs): total {sum(per_run.values()):.2f}; {groups}"


def _service_pids(fleet: Fleet, label: str, stats: dict[int, ProcStat]) -> set[int]:
    proc = fleet.procs.get(label)
    return set() if proc is None else with_descendants([proc.pid], stats)


def _node_pids(node: Node, stats: dict[int, ProcStat]) -> set[int]:
    """The node's start script and what runs under it (``beam.smp``, its port helpers); ``epmd`` is the
    machine's, shared by every node, and not counted."""
    process = node.process
    return set() if process is None else with_descendants([process.pid], stats)


def _suite_pid(stats: dict[int, ProcStat]) -> set[int]:
    return {os.getpid()}


@dataclass
class World:
    """The processes, their links, the target, the webhook receiver and the checks."""

    fleet: Fleet
    pg_url: str
    home: Node
    #: Each region's own node, by region.
    nodes: dict[str, Node]
    #: Each region's federation and shovels reach home's node through its own link, by region.
    wans: dict[str, TcpProxy]
    pg_proxy: TcpProxy
    rabbit_proxy: TcpProxy
    target: DemoTarget
    sink: Receiver
    api: Client
    api_port: int
    #: The small filesystem under the database (or why there is none here).
    disk: SmallDisk | str = "no small disk set up"
    checks: dict[uuid.UUID, int] = field(default_factory=dict)
    engine: AsyncEngine | None = None
    ops_ports: dict[str, int] = field(default_factory=dict)
    #: The CPU of every process the suite starts or uses, by group (see :meth:`cpu_groups`).
    cpu: CpuMeter = field(init=False)

    def __post_init__(self) -> None:
        self.cpu = CpuMeter(self.cpu_groups())

    def cpu_groups(self) -> dict[str, Finder]:
        """Each service process, each RabbitMQ node, the PostgreSQL backends of the world's database,
        and the suite's own process."""
        groups: dict[str, Finder] = {}
        for label in self.labels():
            groups[label] = partial(_service_pids, self.fleet, label)
        for name, node in {"home": self.home, **self.nodes}.items():
            groups[f"rabbitmq {name}"] = partial(_node_pids, node)
        groups["postgres backends"] = PostgresBackends(make_url(self.pg_url).database or "")
        groups[SUITE_GROUP] = _suite_pid
        return groups

    @property
    def rabbit_url(self) -> str:
        """Home's node, directly (not through the cuttable link)."""
        return self.home.amqp_url()

    # -- processes ----------------------------------------------------------------------------------

    def start(self, label: str) -> None:
        """Start one service process (``runner-<region>`` for a region's runner), with its ops port."""
        port = self.ops_ports.setdefault(label, free_port())
        env = {"SEYMOUR_METRICS_PORT": str(port)}
        region = label.removeprefix("runner-")
        if label.startswith("runner-") and region in self.nodes:
            env["SEYMOUR_BROKER_URL"] = self.nodes[region].amqp_url()
            self.fleet.start(label, "runner", "--region", region, **env)
        elif label.startswith("runner-"):
            self.fleet.start(label, "runner", "--region", label.removeprefix("runner-"), **env)
        elif label.startswith("scheduler"):
            self.fleet.start(label, "scheduler", "--no-migrate", **env)
        elif label in ("results", "alerts", "api"):
            self.fleet.start(label, label, "--no-migrate", **env)
        else:
            self.fleet.start(label, label, **env)

    def labels(self) -> list[str]:
        """Every service process of the world."""
        return [*HOME_SERVICES, *(f"runner-{region}" for region in REGIONS)]

    async def kill(self, label: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process and reap it (in a thread: the links must keep pumping meanwhile); its CPU is
        read just before."""
        self.cpu.sample()
        await asyncio.to_thread(self.fleet.kill, label, sig)

    async def stop_all(self) -> dict[str, int]:
        """SIGTERM every process and reap them; their exit codes. Their CPU is read just before."""
        self.cpu.sample()
        return await asyncio.to_thread(self.fleet.stop_all)

    def assert_alive(self) -> None:
        """Every process still runs (a crash is a finding, with its log)."""
        dead = [label for label, alive in self.fleet.alive().items() if not alive]
        assert not dead, {label: self.fleet.log_tail(label) for label in dead}

    # -- load ---------------------------------------------------------------------------------------

    async def add_checks(self, count: int) -> None:
        """``count`` checks every second from every region, each alerting one webhook."""
        for index in range(count):
            spec = demo_check(self.target.url, self.sink.url, interval=1, name=f"fault-load-{index}")
            spec["assertions"] = [a for a in spec["assertions"] if a["source"] != "response_time"]
            spec["regions"] = list(REGIONS)
            created = await self.api.ok("POST", "/api/v1/checks", spec)
            self.checks[uuid.UUID(created["id"])] = 1

    # -- measuring ----------------------------------------------------------------------------------

    def _engine(self) -> AsyncEngine:
        if self.engine is None:
            self.engine = create_async_engine(self.pg_url, pool_size=2, pool_pre_ping=True)
        return self.engine

    def expected(self, start: datetime, end: datetime) -> set[tuple[uuid.UUID, datetime, str]]:
        """Every (check, slot, region) due in ``(start, end]``."""
        return {
            (check_id, slot, region)
            for check_id, interval in self.checks.items()
            for slot in slots_between(check_id, interval, start, end)
            for region in REGIONS
        }

    async def stored(self, start: datetime, end: datetime) -> list[Any]:
        """The scheduled runs stored for our checks with slots in ``(start, end]``."""
        async with self._engine().connect() as connection:
            result = await connection.execute(
                text(
                    "SELECT check_id, slot, region, status, error_class, stored_at FROM runs"
                    " WHERE trigger = 'scheduled' AND slot > :start AND slot <= :end"
                ),
                {"start": start, "end": end},
            )
            return [row for row in result.all() if row.check_id in self.checks]

    async def real_runs(self, start: datetime, end: datetime) -> int:
        """Runs that really ran (passed, failed, error; not missed) stored in ``(start, end]``."""
        async with self._engine().connect() as connection:
            found = await connection.scalar(
                text(
                    "SELECT count(*) FROM runs WHERE status = ANY(:real)"
                    " AND stored_at > :start AND stored_at <= :end"
                ),
                {"real": list(REAL_STATUSES), "start": start, "end": end},
            )
        return int(found or 0)

    async def writable(self, on: bool) -> None:
        """Make the database refuse writes (every session read-only) or take them again; existing sessions
        are ended so that every process reconnects under the new setting."""
        name = make_url(self.pg_url).database
        setting = "RESET default_transaction_read_only" if on else "SET default_transaction_read_only = on"
        for sql in (
            f'ALTER DATABASE "{name}" {setting}',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
        ):
            await asyncio.to_thread(
                subprocess.run,
                ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql],
                check=True,
                capture_output=True,
                timeout=30,
            )

    async def leader(self) -> str:
        """The label of the scheduler process holding the leader lock."""
        async with self._engine().connect() as connection:
            holder = await connection.scalar(
                text("SELECT holder FROM scheduler_lease WHERE name = 'scheduler'")
            )
        pid = int(str(holder).rsplit("-", 2)[-2])
        return next(label for label, proc in self.fleet.procs.items() if proc.pid == pid)

    async def incidents(self) -> int:
        """Incidents ever opened on our checks."""
        async with self._engine().connect() as connection:
            return int(await connection.scalar(text("SELECT count(*) FROM incidents")) or 0)

    async def dead_letters(self) -> int:
        """Dead letters waiting on home's node and the regions' (asked directly, not through a link)."""
        counts = [await count_dead_letters(node.amqp_url()) for node in (self.home, *self.nodes.values())]
        return sum(counts)

    async def consumers_back(self, within: float) -> float | None:
        """Seconds until every queue on every node has a consumer again (``None`` if not ``within``)."""
        began = time.monotonic()
        while time.monotonic() - began < within:
            if not await self.unconsumed():
                return time.monotonic() - began
            await asyncio.sleep(0.5)
        return None

    async def unconsumed(self) -> list[str]:
        """Queues on any node with no consumer, by each node's management API (the nodes asked at once)."""
        names = {"home": self.home, **self.nodes}
        found = await asyncio.gather(*(node.unconsumed() for node in names.values()))
        return [f"{label} {queue}" for label, queues in zip(names, found, strict=True) for queue in queues]

    async def signal_all(self, sig: int, prefix: str = "") -> None:
        """Send ``sig`` to every service process whose label starts with ``prefix`` (the publishing
        wrapper switches on it)."""
        for label, proc in self.fleet.procs.items():
            if label.startswith(prefix) and proc.poll() is None:
                proc.send_signal(sig)

    async def measure(
        self,
        scenario: str,
        start: datetime,
        end: datetime,
        *,
        restored_at: datetime,
        dlq_before: int,
        incidents_before: int,
        sent_before: int,
        consumers_s: float | None = None,
        settle_s: float = 90.0,
    ) -> Row:
        """Wait (bounded) until every slot of the window has a row, then count what happened."""
        expected = self.expected(start, end)

        async def complete() -> bool:
            rows = await self.stored(start, end)
            return {(r.check_id, r.slot, r.region) for r in rows} >= expected

        began = time.monotonic()
        with contextlib.suppress(AssertionError):  # what never arrives is counted below as lost
            await eventually(complete, within=settle_s, every=1.0, what=f"{scenario}: every slot stored")
        rows = await self.stored(start, end)
        keys = Counter((r.check_id, r.slot, r.region) for r in rows)
        row = Row(scenario)
        row.expected = len(expected)
        row.stored_once = sum(1 for key in expected if keys[key] == 1)
        row.stored_twice = sum(1 for key in expected if keys[key] > 1)
        row.lost = sum(1 for key in expected if keys[key] == 0)
        row.missed = Counter(r.error_class for r in rows if r.status == "missed")
        for r in rows:
            if r.status == "missed":
                row.missed_by_region.setdefault(r.region, Counter())[r.error_class] += 1
        row.dead_lettered = await self.dead_letters() - dlq_before
        row.false_incidents = await self.incidents() - incidents_before
        row.transitions = Counter(f"hook {event}" for event in self.sink.events()[sent_before:])
        firsts: dict[str, float] = {}
        for r in rows:
            if r.status == "passed" and r.slot >= restored_at and r.stored_at is not None:
                delay = (r.stored_at - restored_at).total_seconds()
                firsts[r.region] = min(delay, firsts.get(r.region, delay))
        row.recover_s = max(firsts.values()) if len(firsts) == len(REGIONS) else None
        row.lag_s = lag_normal_after(rows, restored_at, end)
        row.consumers_s = consumers_s
        row.notes = f"settled in {time.monotonic() - began:.0f} s"
        lost = sorted(
            (slot, region) for (check_id, slot, region) in expected if keys[(check_id, slot, region)] == 0
        )
        if lost:
            row.notes += f"; lost slots from {lost[0][0].isoformat()} to {lost[-1][0].isoformat()}"
            row.notes += (
                f" (window {start.isoformat()} to {end.isoformat()}, back at {restored_at.isoformat()})"
            )
        row.drain_per_s, row.drained = drain_rate(rows, restored_at)
        if row.dead_lettered:
            letters = []
            for node in (self.home, *self.nodes.values()):
                letters += await peek_dead_letters(node.amqp_url())
            kinds = Counter(f"{d['queue']} {d['reason']} {d['kind']} from {d['user_id']}" for d in letters)
            row.notes += f"; dead letters: {dict(kinds)}"
        return row


async def peek_dead_letters(url: str, at_most: int = 20) -> list[dict[str, Any]]:
    """What the dead letters on a node are, without taking them (left unacked, so the broker keeps them;
    re-publishing them would fail for a letter a region's account sent)."""
    connection = await aio_pika.connect(url)
    letters: list[dict[str, Any]] = []
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE, ensure=False)
        for _ in range(at_most):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            summary = DeadLetter.of(message).summary()
            summary["user_id"] = message.user_id
            letters.append(summary)
    return letters


def drain_rate(rows: list[Any], restored_at: datetime) -> tuple[float | None, tuple[int, int]]:
    """How fast the results that waited went in: the real runs (passed, failed, error) of slots before
    the fault's end that were stored after it, per second from the fault's end until the last of them was
    stored; and (those runs, the misses of such slots recorded late — stored too, but no run's work)."""
    waited = [r for r in rows if r.slot < restored_at and r.stored_at >= restored_at]
    runs = [r for r in waited if r.status in REAL_STATUSES]
    misses = len(waited) - len(runs)
    if len(runs) < 2:
        return None, (len(runs), misses)
    span = max((r.stored_at - restored_at).total_seconds() for r in runs)
    return len(runs) / max(span, 0.001), (len(runs), misses)


def lag_normal_after(rows: list[Any], restored_at: datetime, end: datetime) -> float | None:
    """Seconds after ``restored_at`` from which every stored slot of every region was a real run stored
    within :data:`LAG_NORMAL_S` of its slot; ``None`` if that never held for the last 2 s of the window."""
    late = [
        (r.slot - restored_at).total_seconds()
        for r in rows
        if r.slot >= restored_at
        and (r.status == "missed" or (r.stored_at - r.slot).total_seconds() > LAG_NORMAL_S)
    ]
    after = max(late, default=0.0)
    return None if after > (end - restored_at).total_seconds() - 2 else after


def proxied(url: str, port: int) -> str:
    """``url`` with its port replaced (a database URL through its proxy)."""
    return make_url(url).set(port=port).render_as_string(hide_password=False)


async def started(world: World) -> None:
    """Start every process and wait until the api answers and every region has a live runner."""
    for label in world.labels():
        world.start(label)

    async def regions_live() -> bool:
        world.assert_alive()
        try:
            regions = (await world.api.ok("GET", "/api/v1/regions"))["items"]
        except (OSError, AssertionError):
            return False
        return all(region["live"] for region in regions if region["code"] in REGIONS)

    await eventually(regions_live, within=90, every=0.5, what="the api up and a live runner per region")


def base_env(world_pg: str, world_rabbit: str, api_port: int) -> dict[str, str]:
    """The environment every process of the world shares."""
    return {
        "SEYMOUR_DATABASE_URL": world_pg,
        "SEYMOUR_BROKER_URL": world_rabbit,
        "SEYMOUR_API_TOKEN": TOKEN,
        "SEYMOUR_PORT": str(api_port),
        "SEYMOUR_HEARTBEAT_INTERVAL": "1",
        "SEYMOUR_RESULTS_BATCH_MS": "20",
        "SEYMOUR_LOG_LEVEL": "WARNING",
    }
