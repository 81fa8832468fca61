"""Public status page latency with 10,000 checks: p50/p99 of GET /status/<slug> over HTTP, cached
(what visitors get), uncached (every request renders from rollups), and cached while the rest of the
api is kept busy; against a bare aiohttp server on the same machine in the same run.

    .venv/bin/python bench/status_page.py                    # SQLite file in a temp dir
    .venv/bin/python bench/status_page.py --database-url postgresql+asyncpg://postgres@127.0.0.1/seymour_bench

The database holds 10,000 checks with 24 h of hourly rollups from 3 regions each, and the page's
checks (two groups, one built from a tag) 90 days of them, plus open incidents. The api runs in its
own process (uvicorn), the load in this one. Goal: p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import insert

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.common.db.engine import make_engine, make_sessionmaker, upgrade
from services.common.db.models import Check, CheckTag, Incident, RunRollup, StatusPage

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
TOKEN = "bench-admin-token"


def spec(name: str, tags: list[str]) -> dict[str, Any]:
    return CheckSpec.model_validate(
        {
            "name": name,
            "request": {"method": "GET", "url": f"https://api.example.com/{name}"},
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
            "regions": REGIONS,
            "interval": 60,
            "tags": tags,
        }
    ).model_dump(mode="json")


async def seed(url: str, checks: int, page_checks: int, days: int) -> None:
    """Checks, tags, rollups, incidents and one public page of two groups."""
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    now = utcnow()
    hour = now.replace(minute=0, second=0, microsecond=0)
    ids = [uuid.uuid4() for _ in range(checks)]
    on_page = ids[:page_checks]
    tagged = set(on_page[page_checks // 2 :])
    async with sessions() as session, session.begin():
        for start in range(0, checks, 2000):
            rows = [
                {
                    "id": cid,
                    "name": f"check-{i:05d}",
                    "spec": spec(f"check-{i:05d}", ["status-bench"] if cid in tagged else []),
                    "enabled": True,
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i, cid in enumerate(ids[start : start + 2000], start)
            ]
            await session.execute(insert(Check), rows)
        await session.execute(insert(CheckTag), [{"check_id": cid, "tag": "status-bench"} for cid in tagged])

    def rollup(cid: uuid.UUID, region: str, bucket: Any, n: int) -> dict[str, Any]:
        failed = 1 if (n % 53 == 0) else 0
        return {
            "check_id": cid,
            "region": region,
            "bucket": bucket,
            "total": 60,
            "responded": 60,
            "passed": 60 - failed,
            "failed": failed,
            "errors": 0,
            "missed": 0,
            "sum_ms": 60 * 110.0,
            "latency_hist": {"100": 30, "150": 30},
        }

    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        if batch:
            async with sessions() as session, session.begin():
                await session.execute(insert(RunRollup), batch)
            batch.clear()

    n = 0
    page_set = set(on_page)
    for cid in ids:
        hours = days * 24 if cid in page_set else 24
        for h in range(hours):
            for region in REGIONS:
                n += 1
                batch.append(rollup(cid, region, hour - timedelta(hours=h), n))
                if len(batch) >= 5000:
                    await flush()
    await flush()
    async with sessions() as session, session.begin():
        for cid in [*ids[page_checks : page_checks + 200], *on_page[:3]]:
            session.add(
                Incident(
                    check_id=cid,
                    state="open",
                    opened_at=now - timedelta(minutes=5),
                    failing_regions=["eu-north-1"],
                )
            )
        explicit = on_page[: page_checks // 2]
        session.add(
            StatusPage(
                slug="bench",
                title="Bench status",
                public=True,
                groups=[
                    {
                        "name": "Core",
                        "tag": None,
                        "checks": [
                            {"check_id": str(c), "display_name": f"Service {i}"}
                            for i, c in enumerate(explicit)
                        ],
                    },
                    {"name": "Tagged", "tag": "status-bench", "checks": []},
                ],
                created_at=now,
                updated_at=now,
            )
        )
    await engine.dispose()
    print(f"seeded {checks} checks, {n} rollup rows, page of {page_checks} checks over {days} days")


def serve(url: str, port_queue: Any, fresh_s: float) -> None:
    """The api in its own process."""
    from services.api.app import create_app
    from services.api.server import ApiServer
    from services.api.ui.status_public import PageCache
    from services.common.settings import Settings

    class NoBus:
        async def publish(self, message: Any, **_: Any) -> None:
            return None

    async def main() -> None:
        engine = make_engine(url)
        app = create_app(Settings(api_token=TOKEN), sessions=make_sessionmaker(engine), bus=NoBus())
        app.state.status_cache = PageCache(fresh_s=fresh_s)
        server = ApiServer(app, "127.0.0.1", 0)
        await server.start()
        port_queue.put(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


async def measure(
    url: str, *, seconds: float, concurrency: int, headers: dict[str, str] | None = None
) -> list[float]:
    """Latencies (ms) of GETs of ``url`` from ``concurrency`` workers for ``seconds``."""
    out: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.get(url) as response:
                    await response.read()
                    assert response.status == 200, response.status
                out.append((time.perf_counter() - started) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def report(name: str, values: list[float], seconds: float) -> None:
    values = sorted(values)
    p50 = statistics.median(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    rate = len(values) / seconds
    print(f"{name:<42} n={len(values):>6}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  rps={rate:8.1f}")


async def bare_server_latencies(seconds: float, concurrency: int) -> list[float]:
    app = web.Application()
    body = b"x" * 20000

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html")

    app.router.add_get("/", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await measure(f"http://127.0.0.1:{port}/", seconds=seconds, concurrency=concurrency)
    finally:
        await runner.cleanup()


def start_api(url: str, fresh_s: float) -> tuple[Any, int]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=serve, args=(url, queue, fresh_s), daemon=True)
    process.start()
    return process, int(queue.get(timeout=60))


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    started = time.perf_counter()
    if not args.reuse:
        await seed(url, args.checks, args.page_checks, args.days)
    print(f"seed took {time.perf_counter() - started:.1f} s; database {url.split('://')[0]}")
    bare = await bare_server_latencies(args.seconds, 1)
    report("bare aiohttp server, 20 KB page, 1 client", bare, args.seconds)
    bare_p99 = sorted(bare)[int(len(bare) * 0.99)]
    cached, cached_port = start_api(url, 15.0)
    rendering, rendering_port = start_api(url, 0.0)
    other, other_port = start_api(url, 15.0)
    try:
        page = f"http://127.0.0.1:{cached_port}/status/bench"
        for port in (cached_port, rendering_port, other_port):  # the 90 closed days are read once a day
            await measure(f"http://127.0.0.1:{port}/status/bench", seconds=1.0, concurrency=1)
        for label, target, clients, busy_port in (
            ("cached (15 s), 1 client", page, 1, None),
            (f"cached (15 s), {args.concurrency} clients", page, args.concurrency, None),
            (
                "rendered on every request, 1 client",
                f"http://127.0.0.1:{rendering_port}/status/bench",
                1,
                None,
            ),
            ("cached, same api process kept busy", page, 1, cached_port),
            ("cached, another api process kept busy", page, 1, other_port),
        ):
            busy = None
            if busy_port is not None:
                busy = asyncio.create_task(
                    measure(
                        f"http://127.0.0.1:{busy_port}/api/v1/checks?limit=200",
                        seconds=args.seconds,
                        concurrency=2,
                        headers={"Authorization": f"Bearer {TOKEN}"},
                    )
                )
            values = await measure(target, seconds=args.seconds, concurrency=clients)
            report(f"status page, {label}", values, args.seconds)
            if busy is not None:
                report("  meanwhile GET /api/v1/checks?limit=200", await busy, args.seconds)
            page_p99 = sorted(values)[int(len(values) * 0.99)]
            print(f"  p99 ratio to bare aiohttp (1 client): {page_p99 / bare_p99:.1f}x")
    finally:
        for process in (cached, rendering, other):
            process.kill()
            process.join()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--page-checks", type=int, default=40)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--reuse", action="store_true", help="the database is already seeded by an earlier run"
    )
    asyncio.run(main(parser.parse_args()))
