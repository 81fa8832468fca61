"""The whole test loop under load, in distributed mode: scheduler → router → runner → results.

Starts a local target (a raw asyncio server, own process) and the services as separate processes on
the local RabbitMQ (a fresh vhost) and PostgreSQL (a fresh database), with N checks at interval I.
Prints real runs/s (passed, failed, error) apart from ``missed`` rows, schedule→stored lag p50/p99
(``runs.stored_at`` minus the slot) of real runs, the runner's timing error against a target with a
known delay, CPU ms per real run and RSS for every process (the target's apart from the pipeline's),
and a bare aiohttp loop's requests/s against the same target in the same run, with the ratio.

RabbitMQ and PostgreSQL are shared by everything on the machine: their CPU is the whole broker node
and this database's backends over the window, so other load on the node shows up in the broker's line.

    .venv/bin/python -m bench.pipeline --checks 600 --interval 2 --seconds 30
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from bench.baseline import bare_aiohttp_rps
from contracts.v1 import CheckSpec
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.db.models import Check, Run
from services.common.db.rollups import exact_percentile

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DELAY_MS = 50
REAL = ("passed", "failed", "error")
"""Statuses of runs that actually ran; ``missed`` rows are stored but are not runs."""


def free_port() -> int:
    """A free port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, within: float = 30.0) -> None:
    """Block until something accepts connections on 127.0.0.1:``port``."""
    import socket

    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def sh(*args: str) -> None:
    """Run a command, failing loudly."""
    subprocess.run(args, check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class Scratch:
    """A bench's own database, vhost and log folder, named from one random tag so runs never collide."""

    database: str
    vhost: str
    logs: Path

    @classmethod
    def make(cls, kind: str) -> Scratch:
        """New names for a ``kind`` of bench (``bench``, ``drain``…); the log folder is created."""
        tag = uuid.uuid4().hex[:8]
        scratch = cls(f"seymour_{kind}_{tag}", f"seymour-{kind}-{tag}", Path(f"/tmp/seymour-{kind}-{tag}"))
        scratch.logs.mkdir(parents=True)
        return scratch

    @property
    def db_url(self) -> str:
        """The database, for the services."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}"

    @property
    def broker(self) -> str:
        """The vhost on the local RabbitMQ, for the services."""
        return f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"


def tear_down(procs: list[subprocess.Popen[bytes]], database: str, vhost: str) -> None:
    """Stop the bench's processes (killing any still busy after 15 s), then drop its database and vhost.

    Every bench that starts services ends here, so a bench stopped half-way leaves nothing behind.
    """
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # still draining thousands of messages: the vhost and database must go anyway
            proc.wait(timeout=15)
    subprocess.run(
        ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
        capture_output=True,
        timeout=60,
    )
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)


async def seed(url: str, target: str, checks: int, interval: int, delayed: int, region: str) -> None:
    """Insert the checks (``delayed`` of them against the known-delay endpoint)."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        for index in range(checks):
            path = f"/delay/{DELAY_MS}" if index < delayed else "/fast"
            spec = CheckSpec.model_validate(
                {
                    "name": f"bench-delay-{index:05d}" if index < delayed else f"bench-{index:05d}",
                    "request": {"url": f"{target}{path}"},
                    "assertions": [
                        {"source": "status_code", "comparison": "equals", "target": 200},
                        {"source": "json_body", "property": "$.ok", "comparison": "equals", "target": True},
                    ],
                    "regions": [region],
                    "interval": interval,
                    "timeout": 10,
                }
            )
            session.add(
                Check(id=uuid.uuid4(), name=spec.name, spec=spec.model_dump(mode="json"), enabled=True)
            )
    await engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (from /proc), or NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def postgres_backends(url: str) -> list[int]:
    """OS pids of the PostgreSQL backends serving the bench's database (the services' connections)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid()"
                )
            )
            return [int(pid) for pid in rows.scalars()]
    finally:
        await engine.dispose()


def rabbit_pid() -> int:
    """The local RabbitMQ node's OS pid (its CPU is part of every run's cost)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "eval", "list_to_integer(os:getpid())."],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.strip())


async def first_run(url: str, *, within: float) -> None:
    """Return once a real run (not a ``missed`` row) is stored; raise after ``within`` seconds."""
    engine = make_engine(url)
    deadline = time.monotonic() + within
    try:
        while True:
            async with engine.connect() as conn:
                real = select(Run.run_id).where(Run.status.in_(REAL)).limit(1)
                if (await conn.execute(real)).first() is not None:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no run stored within {within:.0f} s")
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()


async def measure(
    url: str, *, warmup: float, seconds: float, delayed_prefix: str, pids: dict[int, str]
) -> dict[str, Any]:
    """Wait for the first real run and the warm-up after it, then read what was stored in the window
    (by ``stored_at``). Counting warm-up from the first run keeps slow service start-up on a loaded
    machine out of the window."""
    await first_run(url, within=180.0)
    window_start = datetime.now(UTC) + timedelta(seconds=warmup)
    window_end = window_start + timedelta(seconds=seconds)
    await asyncio.sleep(warmup)
    backends = await postgres_backends(url)
    cpu_before = {pid: cpu_seconds(pid) for pid in [*pids, *backends]}
    await asyncio.sleep(seconds)
    cpu = {label: cpu_seconds(pid) - cpu_before[pid] for pid, label in pids.items()}
    cpu["postgres"] = sum(max(cpu_seconds(pid) - cpu_before[pid], 0.0) for pid in backends)
    rss = {label: rss_mb(pid) for pid, label in pids.items()}
    await asyncio.sleep(1.0)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        delayed_ids = set(
            (await session.execute(select(Check.id).where(Check.name.like(f"{delayed_prefix}%"))))
            .scalars()
            .all()
        )
        rows = (
            await session.execute(
                select(
                    Run.slot,
                    Run.stored_at,
                    Run.status,
                    Run.check_id,
                    Run.total_ms,
                    Run.error_class,
                    Run.error_message,
                ).where(Run.stored_at >= window_start, Run.stored_at < window_end)
            )
        ).all()
    await engine.dispose()
    statuses: dict[str, int] = {}
    lags: list[float] = []
    timing_errors: list[float] = []
    missed_why: dict[str, int] = {}
    for slot, stored_at, status, check_id, total_ms, reason, detail in rows:
        statuses[status] = statuses.get(status, 0) + 1
        if status == "missed":
            why = f"{reason}: {missed_where(detail)}"
            missed_why[why] = missed_why.get(why, 0) + 1
        if status not in REAL or stored_at is None:
            continue
        lags.append((stored_at - slot).total_seconds())
        if check_id in delayed_ids and total_ms is not None:
            timing_errors.append(total_ms - DELAY_MS)
    return {
        "rows": len(rows),
        "real": sum(statuses.get(status, 0) for status in REAL),
        "seconds": seconds,
        "lags": lags,
        "statuses": statuses,
        "missed_why": missed_why,
        "timing_errors": timing_errors,
        "cpu": cpu,
        "rss_mb": rss,
        "postgres_backends": len(backends),
    }


def missed_where(detail: str | None) -> str:
    """Where a missed run was given up, from its detail without the per-run parts (ids, seconds)."""
    if not detail:
        return "-"
    if detail.startswith("received by runner"):
        return "received by runner after it expired"
    return detail


def pct(values: list[float], q: float) -> float:
    """A percentile, or NaN for no values."""
    value = exact_percentile(values, q)
    return float("nan") if value is None else value


def main() -> None:
    """Run the benchmark and print its figures (and a JSON line for machines)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=600)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=8)
    parser.add_argument("--delayed", type=int, default=20, help=f"checks against a {DELAY_MS} ms target")
    parser.add_argument("--runners", type=int, default=1)
    parser.add_argument("--with-alerts", action="store_true", help="also run the alerts service")
    args = parser.parse_args()

    scratch = Scratch.make("bench")
    database, vhost, logs = scratch.database, scratch.vhost, scratch.logs
    db_url, broker = scratch.db_url, scratch.broker
    port = free_port()
    target = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")},
        "SEYMOUR_DATABASE_URL": db_url,
        "SEYMOUR_BROKER_URL": broker,
        "SEYMOUR_REGION": "local",
        "SEYMOUR_LOG_LEVEL": "WARNING",
        "SEYMOUR_HEARTBEAT_INTERVAL": "2",
    }

    labels: dict[int, str] = {}

    def start(label: str, *argv: str) -> None:
        log = open(logs / f"{label}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        labels[proc.pid] = label

    sh("psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{database}"')
    sh("rabbitmqctl", "-q", "add_vhost", vhost)
    sh("rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        upgrade_sync(db_url)
        start("target", sys.executable, "-m", "bench.target", "--port", str(port))
        wait_for_port(port)
        baseline = asyncio.run(bare_aiohttp_rps(f"{target}/fast", seconds=5))
        asyncio.run(seed(db_url, target, args.checks, args.interval, args.delayed, "local"))
        seymour = [sys.executable, "-m", "services.cli", "serve"]
        start("results", *seymour, "results", "--no-migrate")
        start("router", *seymour, "router")
        for index in range(args.runners):
            start(f"runner-{index}", *seymour, "runner", "--region", "local")
        if args.with_alerts:
            start("alerts", *seymour, "alerts", "--no-migrate")
        time.sleep(3.0)
        start("scheduler", *seymour, "scheduler", "--no-migrate")
        pids = {pid: label for pid, label in labels.items()} | {rabbit_pid(): "rabbitmq"}
        result = asyncio.run(
            measure(
                db_url, warmup=args.warmup, seconds=args.seconds, delayed_prefix="bench-delay-", pids=pids
            )
        )
    finally:
        tear_down(procs, database, vhost)

    report(args, result, baseline)


def report(args: argparse.Namespace, result: dict[str, Any], baseline: float) -> None:
    """Print the figures for people, then one JSON line for machines."""
    offered = args.checks / args.interval
    real = result["real"]
    rate = real / result["seconds"]
    missed = result["statuses"].get("missed", 0)
    lags = result["lags"]
    errors = result["timing_errors"]
    runs = max(real, 1)
    cpu_ms = {label: seconds * 1000 / runs for label, seconds in sorted(result["cpu"].items())}
    pipeline_ms = sum(ms for label, ms in cpu_ms.items() if label != "target")
    figures = {
        "checks": args.checks,
        "interval_s": args.interval,
        "offered_runs_per_s": offered,
        "real_runs_per_s": round(rate, 1),
        "missed_per_s": round(missed / result["seconds"], 1),
        "statuses": result["statuses"],
        "missed_why": result["missed_why"],
        "lag_p50_s": round(pct(lags, 0.5), 3),
        "lag_p99_s": round(pct(lags, 0.99), 3),
        "timing_error_p50_ms": round(pct(errors, 0.5), 2),
        "timing_error_p99_ms": round(pct(errors, 0.99), 2),
        "timed_runs": len(errors),
        "cpu_ms_per_real_run": {label: round(ms, 3) for label, ms in cpu_ms.items()},
        "cpu_ms_per_real_run_pipeline": round(pipeline_ms, 3),
        "cpu_ms_per_offered_slot": {
            label: round(seconds * 1000 / (offered * result["seconds"]), 3)
            for label, seconds in sorted(result["cpu"].items())
        },
        "cpu_percent_of_a_core": {
            label: round(seconds * 100 / result["seconds"], 1)
            for label, seconds in sorted(result["cpu"].items())
        },
        "rss_mb": {label: round(mb, 1) for label, mb in sorted(result["rss_mb"].items())},
        "postgres_backends": result["postgres_backends"],
        "bare_aiohttp_req_per_s": round(baseline, 1),
        "ratio_real_runs_to_bare_aiohttp": round(rate / baseline, 3),
    }
    lag50, lag99 = figures["lag_p50_s"], figures["lag_p99_s"]
    err50, err99 = figures["timing_error_p50_ms"], figures["timing_error_p99_ms"]
    print(f"offered            {offered:8.1f} runs/s ({args.checks} checks every {args.interval} s)")
    print(
        f"real runs          {rate:8.1f} runs/s over {args.seconds:.0f} s"
        f"   missed {figures['missed_per_s']:.1f}/s   statuses {result['statuses']}"
    )
    if result["missed_why"]:
        print("missed because     " + "; ".join(f"{k} {v}" for k, v in result["missed_why"].items()))
    print(f"schedule->stored   p50 {lag50:.3f} s   p99 {lag99:.3f} s (real runs)")
    print(
        f"timing error       p50 {err50:+.2f} ms   p99 {err99:+.2f} ms vs {DELAY_MS} ms ({len(errors)} runs)"
    )
    print(f"bare aiohttp loop  {baseline:8.1f} req/s (new connection each, same target, same run)")
    print(f"ratio              {rate / baseline:8.3f} real runs per bare request")
    print(
        "CPU ms per real run "
        + "  ".join(f"{label} {ms:.2f}" for label, ms in cpu_ms.items() if label != "target")
        + f"  = pipeline {pipeline_ms:.2f}"
        + f"  (postgres: {result['postgres_backends']} backends of this database)"
    )
    print(f"CPU ms per real run target {cpu_ms.get('target', float('nan')):.2f} (bench target, not Seymour)")
    print(
        "CPU ms per slot    "
        + "  ".join(f"{k} {v:.2f}" for k, v in figures["cpu_ms_per_offered_slot"].items() if k != "target")
        + "  (per slot offered: steady even when runs are missed on a busy machine)"
    )
    print(
        "CPU % of a core    "
        + "  ".join(f"{k} {v:.0f}" for k, v in figures["cpu_percent_of_a_core"].items())
        + "  (per real run is meaningless once nearly everything is missed)"
    )
    print("RSS MB             " + "  ".join(f"{k} {v:.0f}" for k, v in figures["rss_mb"].items()))
    print("json " + json.dumps(figures))


if __name__ == "__main__":
    main()
