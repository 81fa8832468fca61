"""The whole test loop under load, in distributed mode: scheduler → router → runner → results.

Starts a local target (own process) and the services as separate processes on the local RabbitMQ
(a fresh vhost) and PostgreSQL (a fresh database), with N checks at interval I. Prints sustained
stored runs/s, schedule→stored lag p50/p99 (``runs.stored_at`` minus the slot), the runner's timing
error against a target with a known delay, and a bare aiohttp loop's requests/s on the same machine
in the same run, with the ratio.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.baseline import bare_aiohttp_rps
from contracts.v1 import CheckSpec
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.db.models import Check, Run
from services.common.db.rollups import exact_percentile

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
DELAY_MS = 50


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


async def measure(
    url: str, *, warmup: float, seconds: float, delayed_prefix: str, pids: dict[int, str]
) -> dict[str, Any]:
    """Wait for warm-up and the window, then read what was stored in the window (by ``stored_at``)."""
    window_start = datetime.now(UTC) + timedelta(seconds=warmup)
    window_end = window_start + timedelta(seconds=seconds)
    await asyncio.sleep(warmup)
    cpu_before = {pid: cpu_seconds(pid) for pid in pids}
    await asyncio.sleep(seconds)
    cpu = {label: cpu_seconds(pid) - cpu_before[pid] for pid, label in pids.items()}
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
                select(Run.slot, Run.stored_at, Run.status, Run.check_id, Run.total_ms).where(
                    Run.stored_at >= window_start, Run.stored_at < window_end
                )
            )
        ).all()
    await engine.dispose()
    statuses: dict[str, int] = {}
    lags: list[float] = []
    timing_errors: list[float] = []
    for slot, stored_at, status, check_id, total_ms in rows:
        statuses[status] = statuses.get(status, 0) + 1
        lags.append((stored_at - slot).total_seconds())
        if check_id in delayed_ids and total_ms is not None:
            timing_errors.append(total_ms - DELAY_MS)
    return {
        "runs": len(rows),
        "seconds": seconds,
        "lags": lags,
        "statuses": statuses,
        "timing_errors": timing_errors,
        "cpu": cpu,
    }


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

    tag = uuid.uuid4().hex[:8]
    database = f"seymour_bench_{tag}"
    vhost = f"seymour-bench-{tag}"
    db_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"
    broker = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    logs = Path(f"/tmp/seymour-bench-{tag}")
    logs.mkdir(parents=True)
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
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        subprocess.run(
            ["psql", PG_ADMIN, "-qc", f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'],
            capture_output=True,
            timeout=60,
        )
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)

    offered = args.checks / args.interval
    rate = result["runs"] / result["seconds"]
    lags = result["lags"]
    errors = result["timing_errors"]
    figures = {
        "checks": args.checks,
        "interval_s": args.interval,
        "offered_runs_per_s": offered,
        "stored_runs_per_s": round(rate, 1),
        "lag_p50_s": round(pct(lags, 0.5), 3),
        "lag_p99_s": round(pct(lags, 0.99), 3),
        "statuses": result["statuses"],
        "timing_error_p50_ms": round(pct(errors, 0.5), 2),
        "timing_error_p99_ms": round(pct(errors, 0.99), 2),
        "bare_aiohttp_req_per_s": round(baseline, 1),
        "ratio_stored_runs_to_bare_aiohttp": round(rate / baseline, 3),
    }
    lag50, lag99 = figures["lag_p50_s"], figures["lag_p99_s"]
    err50, err99 = figures["timing_error_p50_ms"], figures["timing_error_p99_ms"]
    print(f"offered            {offered:8.1f} runs/s ({args.checks} checks every {args.interval} s)")
    print(f"stored (sustained) {rate:8.1f} runs/s over {args.seconds:.0f} s   statuses {result['statuses']}")
    print(f"schedule->stored   p50 {lag50:.3f} s   p99 {lag99:.3f} s")
    print(
        f"timing error       p50 {err50:+.2f} ms   p99 {err99:+.2f} ms vs {DELAY_MS} ms ({len(errors)} runs)"
    )
    print(f"bare aiohttp loop  {baseline:8.1f} req/s (new connection each, same machine, same run)")
    print(f"ratio              {rate / baseline:8.3f} stored runs per bare request")
    runs = max(result["runs"], 1)
    per_run = {label: round(seconds * 1000 / runs, 3) for label, seconds in sorted(result["cpu"].items())}
    print("CPU ms per stored run " + "  ".join(f"{label} {ms:.2f}" for label, ms in per_run.items()))
    figures["cpu_ms_per_run"] = per_run
    print("json " + json.dumps(figures))


if __name__ == "__main__":
    main()
