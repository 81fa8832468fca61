"""How fast results and alerts drain a backlog: the queues filled while both services were away.

This is the "PostgreSQL (or the services) came back after a minute" case of the fault suite, measured
alone. With the results and alerts services stopped, the bench publishes N realistic run messages
(``check.completed`` over many checks and three regions, passed / failed / error, some ``run.missed``,
and a share published twice, as redelivery and duplicate publishes do) to the results exchange, so both
``results.store`` and ``alerts.evaluate`` hold them. Then it starts ``seymour serve results`` and
``seymour serve alerts`` as their own processes (distributed mode, real RabbitMQ and PostgreSQL) and
measures, until both queues are empty:

* results/s stored (first to last ``stored_at``) and alert evaluations/s (first consumed to queue empty);
* CPU ms per message for each process over its drain (and for the broker node and the database's
  backends), from ``/proc``;
* that every run id became exactly one row and nothing was dead-lettered;
* the peak resident memory (``VmHWM``) of each service process over the whole drain;
* the baseline: bare asyncpg ``COPY`` of the same rows into a copy of ``runs`` on the same database, in
  the same run, and the ratio.

``--batch N`` publishes the results as runners' outboxes do under load: consecutive results of one region
in ``check.completed.batch`` messages of N (missed runs stay alone), so the same runs cost fewer
messages; CPU is then also printed per run, to compare with a run without it.

    .venv/bin/python -m bench.drain --messages 50000 --checks 500 [--batch 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg

from bench.pipeline import PG_ADMIN, Scratch, cpu_seconds, postgres_backends, rabbit_pid, sh, tear_down
from contracts.topology import ALERTS_EVALUATE, DEAD_LETTERS, RESULTS_EXCHANGE, RESULTS_STORE, ROUTING_KEYS
from contracts.v1 import (
    CheckCompleted,
    CheckCompletedBatch,
    CheckSpec,
    RunMissed,
    encode,
    run_id_for,
)
from services.common.bus.rabbit import RabbitBus
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.db.models import Check

REGIONS = ("local", "us-east-1", "eu-west-1")
#: In-flight publishes while filling the queues (confirms pipelined, so filling takes seconds).
PUBLISH_WINDOW = 256
#: Every bounded wait of the bench gives up after this long.
WAIT_LIMIT_S = 900.0


# -- the backlog -------------------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float:
    """The most resident memory a process has held so far, in MiB (``VmHWM``), or NaN once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def seed_checks(url: str, count: int) -> list[uuid.UUID]:
    """``count`` enabled checks over the three regions, with the default alert policy."""
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    ids = [uuid.uuid4() for _ in range(count)]
    async with sessions() as session, session.begin():
        for index, check_id in enumerate(ids):
            spec = CheckSpec.model_validate(
                {
                    "name": f"drain-{index:05d}",
                    "request": {"url": f"http://127.0.0.1:9/api/{index}"},
                    "assertions": [
                        {"source": "status_code", "comparison": "equals", "target": 200},
                        {"source": "json_body", "property": "$.ok", "comparison": "equals", "target": True},
                    ],
                    "regions": list(REGIONS),
                    "interval": 60,
                    "timeout": 10,
                }
            )
            session.add(Check(id=check_id, name=spec.name, spec=spec.model_dump(mode="json"), enabled=True))
    await engine.dispose()
    return ids


def backlog(checks: list[uuid.UUID], count: int, seed: int) -> list[CheckCompleted | RunMissed]:
    """``count`` run messages as runners and the router send them: consecutive slots per check and
    region, mostly passed, some checks failing for a stretch (so alerts open and resolve incidents),
    a few errors and missed runs."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    failing = set(rng.sample(checks, max(1, len(checks) // 20)))
    messages: list[CheckCompleted | RunMissed] = []
    for index in range(count):
        check_id = checks[index % len(checks)]
        round_ = index // len(checks)
        region = REGIONS[round_ % len(REGIONS)]
        slot = start + timedelta(seconds=60 * (round_ // len(REGIONS)))
        run_id = run_id_for(check_id, slot, region)
        roll = rng.random()
        if roll < 0.03:
            messages.append(
                RunMissed(
                    run_id=run_id,
                    check_id=check_id,
                    slot=slot,
                    region=region,
                    reason="expired",
                    detail="expired in the runner queue",
                )
            )
            continue
        fail_now = check_id in failing and (round_ // 30) % 2 == 0
        status = "failed" if fail_now else ("error" if roll < 0.05 else "passed")
        total = rng.lognormvariate(3.5, 0.6)
        code = 500 if status == "failed" else 200
        ok = "false" if status == "failed" else "true"
        items = ", ".join(str(rng.randrange(1000)) for _ in range(rng.randrange(2, 40)))
        body = f'{{"ok": {ok}, "items": [{items}]}}'
        started = slot + timedelta(milliseconds=rng.uniform(0, 30))
        common: dict[str, Any] = {
            "run_id": run_id,
            "check_id": check_id,
            "slot": slot,
            "region": region,
            "status": status,
            "started_at": started,
            "completed_at": started + timedelta(milliseconds=total),
            "runner_id": f"runner-{region}-{index % 3}",
            "request": {"method": "GET", "url": f"http://127.0.0.1:9/api/{index % len(checks)}"},
        }
        if status == "error":
            messages.append(
                CheckCompleted.model_validate(
                    {
                        **common,
                        "timings": {"dns_ms": 0.4, "connect_ms": total, "total_ms": total},
                        "error": {"class": "connect", "message": "connection refused"},
                    }
                )
            )
            continue
        messages.append(
            CheckCompleted.model_validate(
                {
                    **common,
                    "response": {
                        "status_code": code,
                        "headers": {"content-type": "application/json", "server": "bench"},
                        "body": body,
                        "size": len(body),
                    },
                    "timings": {
                        "dns_ms": None,
                        "connect_ms": total * 0.2,
                        "ttfb_ms": total * 0.9,
                        "download_ms": total * 0.1,
                        "total_ms": total,
                    },
                    "assertions": [
                        {
                            "source": "status_code",
                            "comparison": "equals",
                            "target": 200,
                            "observed": code,
                            "passed": code == 200,
                        },
                        {
                            "source": "json_body",
                            "property": "$.ok",
                            "comparison": "equals",
                            "target": True,
                            "observed": status != "failed",
                            "passed": status != "failed",
                        },
                    ],
                }
            )
        )
    return messages


Published = CheckCompleted | CheckCompletedBatch | RunMissed


def packed(messages: list[CheckCompleted | RunMissed], batch: int) -> list[Published]:
    """``messages`` as a runner's outbox sends them: runs of consecutive results of one region in batches
    of up to ``batch`` (a batch of one is a plain result); missed runs alone, in their place."""
    if batch <= 1:
        return list(messages)
    out: list[Published] = []
    gathered: list[CheckCompleted] = []

    def close() -> None:
        if len(gathered) == 1:
            out.append(gathered[0])
        elif gathered:
            out.append(CheckCompletedBatch(region=gathered[0].region, items=list(gathered)))
        gathered.clear()

    for message in messages:
        if isinstance(message, CheckCompleted):
            if gathered and (gathered[0].region != message.region or len(gathered) >= batch):
                close()
            gathered.append(message)
            continue
        close()
        out.append(message)
    close()
    return out


async def fill(broker: str, messages: list[Published], duplicates: float) -> tuple[int, int]:
    """Declare the queues as the services do, publish every message (a share twice), return how many
    messages were published and how many runs they carried. Confirms are pipelined:
    :data:`PUBLISH_WINDOW` in flight."""
    bus = RabbitBus(broker, instance="drain-bench")
    for spec in (RESULTS_STORE, ALERTS_EVALUATE):
        await bus.declare_queue(spec)
    await bus.start()
    await bus.stop()
    rng = random.Random(7)
    bodies = [encode(message) for message in messages]
    runs = [len(message.items) if isinstance(message, CheckCompletedBatch) else 1 for message in messages]
    extra = [index for index in range(len(bodies)) if rng.random() < duplicates]
    connection = await aio_pika.connect(broker)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(RESULTS_EXCHANGE, ensure=False)
        window = asyncio.Semaphore(PUBLISH_WINDOW)
        kinds = {body: message.kind for body, message in zip(bodies, messages, strict=True)}

        async def one(body: bytes) -> None:
            async with window:
                kind = kinds[body]
                await exchange.publish(
                    aio_pika.Message(
                        body,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        content_type="application/json",
                        type=kind,
                        user_id="guest",
                    ),
                    ROUTING_KEYS[kind],
                )

        everything = bodies + [bodies[index] for index in extra]
        for chunk in range(0, len(everything), 4096):
            await asyncio.gather(*(one(body) for body in everything[chunk : chunk + 4096]))
    finally:
        await connection.close()
    return len(everything), sum(runs) + sum(runs[index] for index in extra)


# -- watching the drain ------------------------------------------------------------------------------


async def ready_counts(channel: aio_pika.abc.AbstractChannel) -> dict[str, int]:
    """Ready messages per queue (a passive declare: unacked ones are not counted)."""
    counts = {}
    for name in (RESULTS_STORE.name, ALERTS_EVALUATE.name, DEAD_LETTERS.name):
        declared = await channel.declare_queue(name, passive=True)
        counts[name] = int(declared.declaration_result.message_count or 0)
    return counts


def total_messages(vhost: str) -> dict[str, int]:
    """Ready + unacked per queue, from the broker itself."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


async def watch(
    broker: str,
    vhost: str,
    published: int,
    pids: dict[str, int],
    backends: list[int],
    queues: tuple[str, ...],
) -> dict[str, Any]:
    """Poll the queues until both are empty; note when each started and finished draining, and the
    CPU of every process at those moments."""
    connection = await aio_pika.connect(broker)
    channel = await connection.channel()
    began: dict[str, float] = {}
    ended: dict[str, float] = {}
    cpu_at: dict[str, dict[str, float]] = {}
    every = {**pids, **{f"pg-{pid}": pid for pid in backends}}
    deadline = time.monotonic() + WAIT_LIMIT_S
    try:
        while len(ended) < len(queues):
            if time.monotonic() > deadline:
                raise TimeoutError(f"queues not drained within {WAIT_LIMIT_S:.0f} s: {began} {ended}")
            counts = await ready_counts(channel)
            now = time.monotonic()
            for name in queues:
                if name not in began and counts[name] < published:
                    began[name] = now
                    cpu_at[f"{name}:start"] = {label: cpu_seconds(pid) for label, pid in every.items()}
                # ready is 0: then wait for the unacked ones too (the broker's own count, slower to ask)
                drained = name in began and name not in ended and counts[name] == 0
                if drained and total_messages(vhost).get(name, 0) == 0:
                    ended[name] = time.monotonic()
                    cpu_at[f"{name}:end"] = {label: cpu_seconds(pid) for label, pid in every.items()}
            await asyncio.sleep(0.05 if len(began) < len(queues) else 0.2)
        dead = (await ready_counts(channel))[DEAD_LETTERS.name]
    finally:
        await connection.close()
    return {"began": began, "ended": ended, "cpu_at": cpu_at, "dead_letters": dead}


async def stored(url: str) -> dict[str, Any]:
    """Rows, distinct run ids and the first and last ``stored_at`` of ``runs``."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        row = await connection.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT run_id) AS d,"
            " min(stored_at) AS a, max(stored_at) AS b FROM runs"
        )
        incidents = await connection.fetchval("SELECT count(*) FROM incidents")
        states = await connection.fetchval("SELECT count(*) FROM alert_state")
    finally:
        await connection.close()
    return {
        "rows": int(row["n"]),
        "distinct": int(row["d"]),
        "first": row["a"],
        "last": row["b"],
        "incidents": int(incidents),
        "alert_states": int(states),
    }


async def copy_baseline(url: str, rows: list[dict[str, Any]]) -> float:
    """Rows/s of a bare asyncpg ``COPY`` of the same rows into a copy of ``runs`` (same database)."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await connection.execute("CREATE TABLE runs_copy_baseline (LIKE runs INCLUDING ALL)")
        columns = list(rows[0])
        records = [
            tuple(json.dumps(value) if isinstance(value, (dict, list)) else value for value in row.values())
            for row in rows
        ]
        started = time.perf_counter()
        await connection.copy_records_to_table("runs_copy_baseline", records=records, columns=columns)
        elapsed = time.perf_counter() - started
        await connection.execute("DROP TABLE runs_copy_baseline")
    finally:
        await connection.close()
    return len(records) / elapsed


# -- the run -----------------------------------------------------------------------------------------


def main() -> None:
    """Fill, drain, check, print."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--duplicates", type=float, default=0.01, help="share published twice")
    parser.add_argument("--no-alerts", action="store_true", help="drain results.store only")
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="results per check.completed.batch message, as runners' outboxes send them (1: each alone)",
    )
    args = parser.parse_args()

    scratch = Scratch.make("drain")
    database, vhost, logs = scratch.database, scratch.vhost, scratch.logs
    db_url, broker = scratch.db_url, scratch.broker
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEYMOUR_")},
        "SEYMOUR_DATABASE_URL": db_url,
        "SEYMOUR_BROKER_URL": broker,
        "SEYMOUR_REGION": "local",
        "SEYMOUR_LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    sh("psql", PG_ADMIN, "-qc", f'CREATE DATABASE "{database}"')
    sh("rabbitmqctl", "-q", "add_vhost", vhost)
    sh("rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        upgrade_sync(db_url)
        checks = asyncio.run(seed_checks(db_url, args.checks))
        messages = backlog(checks, args.messages, seed=1)
        filled = time.perf_counter()
        published, carried = asyncio.run(fill(broker, packed(messages, args.batch), args.duplicates))
        fill_s = time.perf_counter() - filled
        print(
            f"filled {published} messages carrying {carried} runs ({args.messages} distinct,"
            f" batch {args.batch}) in {fill_s:.1f} s",
            flush=True,
        )
        if args.no_alerts:
            subprocess.run(
                ["rabbitmqctl", "-q", "purge_queue", "-p", vhost, ALERTS_EVALUATE.name],
                capture_output=True,
                timeout=60,
                check=True,
            )

        pids: dict[str, int] = {}
        seymour = [sys.executable, "-m", "services.cli", "serve"]
        for service in ("results",) if args.no_alerts else ("results", "alerts"):
            log = open(logs / f"{service}.log", "wb")  # noqa: SIM115 - lives as long as the process
            proc = subprocess.Popen(
                [*seymour, service, "--no-migrate"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
            procs.append(proc)
            pids[service] = proc.pid
        pids["rabbitmq"] = rabbit_pid()
        backends = asyncio.run(_backends_soon(db_url))
        queues = (RESULTS_STORE.name,) if args.no_alerts else (RESULTS_STORE.name, ALERTS_EVALUATE.name)
        watched = asyncio.run(watch(broker, vhost, published, pids, backends, queues))
        watched["peak_rss_mb"] = {label: round(peak_rss_mb(pid), 1) for label, pid in pids.items()}
        result = asyncio.run(stored(db_url))
        from services.results.rows import completed_row, missed_row

        rows = [
            {
                **(completed_row(m) if isinstance(m, CheckCompleted) else missed_row(m)),
                "stored_at": datetime.now(UTC),
            }
            for m in messages
        ]
        baseline = asyncio.run(copy_baseline(db_url, rows))
    finally:
        tear_down(procs, database, vhost)
    report(args, published, carried, watched, result, baseline, logs)


async def _backends_soon(url: str) -> list[int]:
    """The database backends of the services, once they have connected (bounded wait)."""
    deadline = time.monotonic() + 60
    found: list[int] = []
    while time.monotonic() < deadline:
        found = await postgres_backends(url)
        if found:
            await asyncio.sleep(1.0)
            return await postgres_backends(url)
        await asyncio.sleep(0.2)
    return found


def report(
    args: argparse.Namespace,
    published: int,
    carried: int,
    watched: dict[str, Any],
    result: dict[str, Any],
    baseline: float,
    logs: Path,
) -> None:
    """Print the figures for people, then one JSON line for machines."""
    unique = args.messages
    span = (result["last"] - result["first"]).total_seconds() if result["rows"] else float("nan")
    results_rate = result["rows"] / span if span and span > 0 else float("nan")
    figures: dict[str, Any] = {
        "batch": args.batch,
        "messages": published,
        "runs_published": carried,
        "runs": unique,
        "rows": result["rows"],
        "distinct_run_ids": result["distinct"],
        "dead_letters": watched["dead_letters"],
        "results_per_s": round(results_rate, 1),
        "copy_baseline_rows_per_s": round(baseline, 1),
        "ratio": round(results_rate / baseline, 4),
        "incidents": result["incidents"],
        "alert_states": result["alert_states"],
        "cpu_ms_per_message": {},
        "cpu_ms_per_run": {},
        "logs": str(logs),
    }
    print(f"runs {unique} (+{carried - unique} published twice) in {published} messages", end="")
    print(f" → rows {result['rows']}, ", end="")
    print(f"distinct run ids {result['distinct']}, dead letters {watched['dead_letters']}")
    print(f"results:  {results_rate:,.0f} runs/s stored (first→last stored_at {span:.2f} s)")
    for name in (RESULTS_STORE.name, ALERTS_EVALUATE.name):
        began, ended = watched["began"].get(name), watched["ended"].get(name)
        start, end = watched["cpu_at"].get(f"{name}:start"), watched["cpu_at"].get(f"{name}:end")
        if began is None or ended is None or start is None or end is None:
            continue
        seconds = ended - began
        rate = published / seconds if seconds > 0 else float("nan")
        figures[f"{name}_drain_s"] = round(seconds, 2)
        figures[f"{name}_messages_per_s"] = round(rate, 1)
        service = "results" if name == RESULTS_STORE.name else "alerts"
        own = (end[service] - start[service]) * 1000 / published
        broker = (end["rabbitmq"] - start["rabbitmq"]) * 1000 / published
        pg = sum(end[k] - start[k] for k in end if k.startswith("pg-")) * 1000 / published
        figures["cpu_ms_per_message"][service] = round(own, 3)
        per_run = published / carried
        figures["cpu_ms_per_run"][service] = round(own * per_run, 4)
        figures["cpu_ms_per_run"][f"rabbitmq_during_{service}"] = round(broker * per_run, 4)
        figures["cpu_ms_per_run"][f"postgres_during_{service}"] = round(pg * per_run, 4)
        figures[f"{name}_runs_per_s"] = round(carried / seconds, 1) if seconds > 0 else None
        print(
            f"{name}: drained {published} messages ({carried} runs) in {seconds:.2f} s = {rate:,.0f} msg/s,"
            f" {carried / seconds:,.0f} runs/s; CPU ms per message: {service} {own:.3f},"
            f" rabbitmq {broker:.3f}, postgres (all backends) {pg:.3f}; per run: {service}"
            f" {own * per_run:.4f}, rabbitmq {broker * per_run:.4f}, postgres {pg * per_run:.4f}"
        )
    figures["peak_rss_mb"] = watched["peak_rss_mb"]
    peaks = ", ".join(
        f"{label} {mb:.0f}" for label, mb in watched["peak_rss_mb"].items() if label != "rabbitmq"
    )
    print(f"peak RSS (VmHWM) MiB: {peaks}")
    print(f"bare asyncpg COPY of the same rows: {baseline:,.0f} rows/s; ratio {results_rate / baseline:.3f}")
    ok = result["rows"] == unique == result["distinct"] and watched["dead_letters"] == 0
    print("every run stored exactly once, nothing dead-lettered" if ok else "MISMATCH: see above")
    print(json.dumps(figures, default=str))
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
