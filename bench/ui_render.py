"""UI render times with 1,000 checks and one check with 100,000 runs (stored with rollups exactly as
the results service stores them), measured through the Litestar test client.

    .venv/bin/python bench/ui_render.py                     # SQLite file in a temp dir
    .venv/bin/python bench/ui_render.py --database-url postgresql+asyncpg://postgres@127.0.0.1/seymour_bench

Prints p50/p95 milliseconds per page; the target is < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from contracts.v1 import CheckSpec
from contracts.v1.base import utcnow
from services.api.accounts import create_user, open_session
from services.api.app import create_app
from services.api.ui.security import SESSION_COOKIE
from services.common.db.engine import make_engine, make_sessionmaker, upgrade
from services.common.db.models import Check
from services.common.settings import Settings
from services.results.store import write_runs

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]


class NoBus:
    """Pages under test publish nothing; a publisher that drops keeps the bench about rendering."""

    async def publish(self, message: Any, **_: Any) -> None:
        return None


def spec(name: str) -> dict[str, Any]:
    return CheckSpec.model_validate(
        {
            "name": name,
            "request": {"method": "GET", "url": f"https://api.example.com/{name}"},
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
            "regions": REGIONS,
            "interval": 60,
        }
    ).model_dump(mode="json")


def run(check_id: uuid.UUID, region: str, index: int, now: Any) -> dict[str, Any]:
    completed = now - timedelta(seconds=60 * (index // len(REGIONS)) + index % len(REGIONS))
    failed = index % 97 == 0
    ms = 40.0 + (index * 7919) % 300
    return {
        "run_id": uuid.uuid4(),
        "check_id": check_id,
        "region": region,
        "slot": completed,
        "trigger": "scheduled",
        "status": "failed" if failed else "passed",
        "started_at": completed,
        "completed_at": completed,
        "total_ms": ms,
        "status_code": 503 if failed else 200,
        "error_class": "assertion" if failed else None,
        "error_message": None,
        "assertions_passed": 0 if failed else 1,
        "assertions_total": 1,
        "degraded": False,
        "timings": {"dns_ms": 1.0, "connect_ms": 2.0, "ttfb_ms": ms - 5, "download_ms": 1.0, "total_ms": ms},
        "response": {"status_code": 503 if failed else 200, "headers": {}, "body": "{}", "size": 2},
        "assertions": [],
        "request": None,
        "runner_id": "bench",
    }


async def seed(sessions: Any, checks: int, runs: int) -> uuid.UUID:
    now = utcnow()
    ids = [uuid.uuid4() for _ in range(checks)]
    async with sessions() as session, session.begin():
        session.add_all(
            Check(
                id=check_id,
                name=f"check-{i:04d}",
                spec=spec(f"check-{i:04d}"),
                created_at=now,
                updated_at=now,
            )
            for i, check_id in enumerate(ids)
        )
    busy = ids[0]
    started = time.perf_counter()
    batch = 5000
    for start in range(0, runs, batch):
        rows = [run(busy, REGIONS[i % len(REGIONS)], i, now) for i in range(start, min(runs, start + batch))]
        async with sessions() as session, session.begin():
            await write_runs(session, rows)
    async with sessions() as session, session.begin():
        # the other checks get three recent runs each, so every row of the table has marks
        await write_runs(
            session, [run(check_id, region, 0, now) for check_id in ids[1:] for region in REGIONS]
        )
    print(f"seeded {checks} checks and {runs} runs of one check in {time.perf_counter() - started:.1f} s")
    return busy


async def measure(client: AsyncTestClient[Any], path: str, repeat: int) -> tuple[float, float]:
    await client.get(path)  # warm caches (templates, statements)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    times.sort()
    return statistics.median(times), times[max(0, int(0.95 * len(times)) - 1)]


async def main(args: argparse.Namespace) -> None:
    url = args.database_url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    await upgrade(url)
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    busy = await seed(sessions, args.checks, args.runs)
    user = await create_user(sessions, "bench", "bench-password", is_admin=True)
    app = create_app(Settings(), sessions=sessions, bus=NoBus())
    pages = [
        ("home (100 per page)", "/"),
        ("home (all 1,000)", "/?per_page=1000"),
        ("check detail 1h", f"/checks/{busy}?window=1h"),
        ("check detail 24h", f"/checks/{busy}"),
        ("check detail 7d", f"/checks/{busy}?window=7d"),
        ("check detail 30d", f"/checks/{busy}?window=30d"),
        ("chart.json 24h", f"/checks/{busy}/chart.json?window=24h"),
        ("chart.json 30d", f"/checks/{busy}/chart.json?window=30d"),
        ("runs page 1", f"/checks/{busy}/runs"),
        ("runs page 100", f"/checks/{busy}/runs?page=100"),
    ]
    async with AsyncTestClient(app=app) as client:
        client.cookies.set(SESSION_COOKIE, await open_session(sessions, user))
        print(f"{'page':<24} {'p50 ms':>8} {'p95 ms':>8}")
        for name, path in pages:
            p50, p95 = await measure(client, path, args.repeat)
            flag = "" if p95 < 300 else "  > 300 ms"
            print(f"{name:<24} {p50:8.1f} {p95:8.1f}{flag}")
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    asyncio.run(main(parser.parse_args()))
