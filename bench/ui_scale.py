"""Every UI page, partial and API route at real data sizes, on PostgreSQL, through a real server.

Seeds (once) 10,000 checks × 3 regions with ~10 million runs over 7 days and their hourly rollups
(``bench/seed.py``: set-based SQL, minutes), serves the api in separate processes (``--workers``) and
measures each route with keep-alive clients: first one client going through the routes in turn, then 8
clients at once. Prints p50/p95/p99 ms per route and the data size, and per route what one request cost
its worker (median CPU ms, SQL statements, pooled connections checked out): on a shared machine those
stay put where wall-clock percentiles do not. A seeded database is reused as it is.

    .venv/bin/python bench/ui_scale.py                               # seed if needed, measure
    .venv/bin/python bench/ui_scale.py --busy 20 --idle 200 --days 2  # a small run
    .venv/bin/python bench/ui_scale.py --drop                        # ... and drop the database after
    .venv/bin/python bench/ui_scale.py --sequential-only             # one client: costs per route

Goals: every route p99 ≤ 200 ms with 8 clients; the home page and its polled partial ≤ 100 ms;
creating or editing a check ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.seed import Shape, data_size, seed  # noqa: E402
from contracts.v1.base import utcnow  # noqa: E402

TOKEN = "bench-token"
ADMIN = ("bench", "bench-password-1")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class NoBus:
    """The pages publish check changes; nothing consumes them here, so a publisher that drops keeps the
    bench about the api (and needs no broker)."""

    async def publish(self, message: Any, **_: Any) -> None:
        return None


async def serve(url: str, port: int) -> None:
    """One api worker (``--serve``): the app on ``url``'s database, bound with SO_REUSEPORT."""
    from services.api.app import create_app
    from services.api.server import ApiServer
    from services.common.db.engine import make_engine, make_sessionmaker
    from services.common.settings import Settings

    engine = make_engine(url)
    app = create_app(Settings(api_token=TOKEN), sessions=make_sessionmaker(engine), bus=NoBus())
    server = ApiServer(app, "127.0.0.1", port, reuse_port=True)
    server._server.config.app = Metered(app, engine)  # the bench wraps the app it serves
    await server.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop()
    await engine.dispose()


@dataclass
class Tally:
    """What one request cost its worker: CPU time, SQL statements, pooled connections checked out."""

    cpu: float = 0.0
    statements: int = 0
    checkouts: int = 0


TALLY: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("tally", default=None)


class Metered:
    """The app, with what each request cost in response headers (``x-bench-cpu-us``, ``x-bench-sql``,
    ``x-bench-conns``). CPU is the process's CPU time between the request's arrival and its response
    headers: exact with one client per worker, and steadier than wall-clock time on a shared machine.
    Statements and checkouts count round trips to PostgreSQL that are not hidden in a driver."""

    def __init__(self, app: Any, engine: Any) -> None:
        from sqlalchemy import event

        self.app = app

        def count(*_: Any, **__: Any) -> None:
            tally = TALLY.get()
            if tally is not None:
                tally.statements += 1

        def checkout(*_: Any, **__: Any) -> None:
            tally = TALLY.get()
            if tally is not None:
                tally.checkouts += 1

        event.listen(engine.sync_engine, "before_cursor_execute", count)
        event.listen(engine.sync_engine.pool, "checkout", checkout)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tally = Tally()
        TALLY.set(tally)
        started = time.process_time()

        async def metered_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                used = int((time.process_time() - started) * 1e6)
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        (b"x-bench-cpu-us", str(used).encode()),
                        (b"x-bench-sql", str(tally.statements).encode()),
                        (b"x-bench-conns", str(tally.checkouts).encode()),
                    ],
                }
            await send(message)

        await self.app(scope, receive, metered_send)


def psql(sql: str) -> str:
    done = subprocess.run(["psql", PG_ADMIN, "-Atqc", sql], check=True, capture_output=True, text=True)
    return done.stdout.strip()


async def prepare(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Create and seed the database unless it is there already; returns its size."""
    from services.common.db.engine import make_engine, make_sessionmaker, upgrade

    exists = psql(f"SELECT 1 FROM pg_database WHERE datname = '{args.database}'") == "1"
    if exists and args.reseed:
        psql(f'DROP DATABASE "{args.database}" WITH (FORCE)')
        exists = False
    if not exists:
        psql(f'CREATE DATABASE "{args.database}"')
    await upgrade(url)
    engine = make_engine(url)
    async with engine.connect() as conn:
        seeded = (await conn.execute(text("SELECT count(*) FROM checks"))).scalar_one()
        if not seeded:
            shape = Shape(busy=args.busy, idle=args.idle, days=args.days)
            print(f"seeding {shape} ...", flush=True)
            started = time.perf_counter()
            report = await seed(conn, shape, now=utcnow())
            print(f"seeded in {time.perf_counter() - started:.0f} s: {json.dumps(report)}", flush=True)
        size = await data_size(conn)
        db_bytes = (await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
        size["database_mb"] = round(db_bytes / 2**20)
    sessions = make_sessionmaker(engine)
    async with sessions() as session:
        has_user = (
            await session.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": ADMIN[0]})
        ).first()
    if not has_user:
        from services.api.accounts import create_user

        await create_user(sessions, *ADMIN, is_admin=True)
    await engine.dispose()
    return size


@dataclass
class Route:
    name: str
    method: str
    path: str
    goal_ms: float = 200.0
    body: Callable[[], Any] | None = None
    form: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    status: tuple[int, ...] = (200,)


def check_json(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "request": {"method": "GET", "url": "https://api.example.com/health"},
        "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
        "regions": ["us-east-1", "eu-north-1", "ca-central-1"],
        "interval": 60,
        "enabled": False,
    }


def check_form(name: str) -> list[tuple[str, str]]:
    return [
        ("name", name),
        ("method", "GET"),
        ("url", "https://api.example.com/health"),
        ("body_mode", "none"),
        ("assertion_row", "a0"),
        ("assertion-a0-source", "status_code"),
        ("assertion-a0-property", ""),
        ("assertion-a0-comparison", "equals"),
        ("assertion-a0-target", "200"),
        *(("regions", region) for region in ("us-east-1", "eu-north-1", "ca-central-1")),
        ("interval", "60"),
        ("interval_custom", ""),
        ("timeout", "10"),
    ]


async def ids(url: str) -> dict[str, str]:
    """A busy check, an idle one, one of their runs, and a cursor 900 pages deep."""
    from services.common.db.engine import make_engine

    engine = make_engine(url)
    async with engine.connect() as conn:

        async def one(sql: str, **params: Any) -> Any:
            return (await conn.execute(text(sql), params)).scalar_one()

        busy = await one("SELECT id FROM checks WHERE name = 'check-busy-000001'")
        idle = await one("SELECT id FROM checks WHERE name = 'check-idle-000001'")
        run = await one(
            "SELECT run_id FROM runs WHERE check_id = :c ORDER BY completed_at DESC LIMIT 1", c=busy
        )
        deep = (
            await conn.execute(
                text(
                    "SELECT completed_at, run_id FROM runs WHERE check_id = :c "
                    "ORDER BY completed_at DESC, run_id DESC OFFSET :o LIMIT 1"
                ),
                {"c": busy, "o": 50 * 100},
            )
        ).first()
    await engine.dispose()
    stamp = (
        deep[0].isoformat().replace("+00:00", "Z") if deep else utcnow().isoformat().replace("+00:00", "Z")
    )
    cursor = f"{stamp}~{deep[1] if deep else uuid.UUID(int=0)}"
    from urllib.parse import quote

    return {"busy": str(busy), "idle": str(idle), "run": str(run), "deep": quote(cursor)}


def routes(found: dict[str, str]) -> list[Route]:
    api = {"Authorization": f"Bearer {TOKEN}"}
    htmx = {"HX-Request": "true"}
    counter = iter(range(10**9))
    b = found["busy"]
    out = [
        Route("GET / (home, 100 checks)", "GET", "/", 100),
        Route("GET /partials/checks (poll, drawn)", "GET", "/partials/checks", 100, headers=htmx),
        Route(
            "GET /partials/checks (poll, 304)",
            "GET",
            "/partials/checks",
            100,
            headers=htmx,
            status=(304, 200),
        ),
        Route("GET /?page=50", "GET", "/?page=50"),
        Route("GET /?per_page=1000", "GET", "/?per_page=1000"),
        Route("GET /checks/new", "GET", "/checks/new"),
        Route("GET check detail 1h", "GET", f"/checks/{b}?window=1h"),
        Route("GET check detail 24h", "GET", f"/checks/{b}"),
        Route("GET check detail 7d", "GET", f"/checks/{b}?window=7d"),
        Route("GET check detail 30d", "GET", f"/checks/{b}?window=30d"),
        Route("GET idle check detail 24h", "GET", f"/checks/{found['idle']}"),
        Route("GET latest runs partial", "GET", f"/checks/{b}/partials/latest", headers=htmx),
        Route("GET chart.json 1h", "GET", f"/checks/{b}/chart.json?window=1h"),
        Route("GET chart.json 24h", "GET", f"/checks/{b}/chart.json?window=24h"),
        Route("GET chart.json 30d", "GET", f"/checks/{b}/chart.json?window=30d"),
        Route("GET runs page 1", "GET", f"/checks/{b}/runs"),
        Route("GET runs page 101 (cursor)", "GET", f"/checks/{b}/runs?page=101&before={found['deep']}"),
        Route("GET runs failed only", "GET", f"/checks/{b}/runs?result=failed"),
        Route("GET runs one region", "GET", f"/checks/{b}/runs?region=eu-north-1"),
        Route("GET run detail", "GET", f"/runs/{found['run']}"),
        Route("GET edit form", "GET", f"/checks/{b}/edit"),
        Route("GET settings", "GET", "/settings"),
        Route("GET status pages", "GET", "/status-pages"),
        Route("GET api checks", "GET", "/api/v1/checks", headers=api),
        Route("GET api check", "GET", f"/api/v1/checks/{b}", headers=api),
        Route("GET api check runs", "GET", f"/api/v1/checks/{b}/runs", headers=api),
        Route("GET api runs deep", "GET", f"/api/v1/checks/{b}/runs?before={found['deep']}", headers=api),
        Route("GET api summary 24h", "GET", f"/api/v1/checks/{b}/summary", headers=api),
        Route("GET api summary 30d", "GET", f"/api/v1/checks/{b}/summary?window=30d", headers=api),
        Route("GET api chart 7d", "GET", f"/api/v1/checks/{b}/chart?window=7d", headers=api),
        Route("GET api incidents", "GET", f"/api/v1/checks/{b}/incidents", headers=api),
        Route("GET api run", "GET", f"/api/v1/runs/{found['run']}", headers=api),
        Route("GET api regions", "GET", "/api/v1/regions", headers=api),
        Route(
            "POST api create check",
            "POST",
            "/api/v1/checks",
            100,
            body=lambda: check_json(f"zz-bench-api-{uuid.uuid4().hex[:12]}"),
            headers=api,
            status=(201,),
        ),
        Route(
            "PUT api edit check",
            "PUT",
            f"/api/v1/checks/{found['idle']}",
            100,
            body=lambda: {**check_json("check-idle-000001"), "interval": 3600 + next(counter) % 60},
            headers=api,
        ),
        Route(
            "POST form create check",
            "POST",
            "/checks",
            100,
            body=lambda: check_form(f"zz-bench-form-{uuid.uuid4().hex[:12]}"),
            form=True,
            status=(303,),
        ),
        Route(
            "POST form edit check",
            "POST",
            f"/checks/{found['idle']}",
            100,
            body=lambda: check_form("check-idle-000001"),
            form=True,
            status=(303,),
        ),
    ]
    return out


@dataclass
class Client:
    """One browser-like client: one keep-alive connection, its session cookie, CSRF token and ETag."""

    base: str
    http: aiohttp.ClientSession
    csrf: str = ""
    etag: str = ""
    not_modified: list[bool] = field(default_factory=list)
    costs: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)

    @classmethod
    async def open(cls, base: str) -> Client:
        http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), cookie_jar=aiohttp.CookieJar(unsafe=True)
        )
        client = cls(base, http)
        async with http.get(f"{base}/login") as page:
            token = re.search(r'name="_csrf" value="([^"]+)"', await page.text())
        assert token is not None
        form = {"username": ADMIN[0], "password": ADMIN[1], "_csrf": token.group(1), "next": "/"}
        async with http.post(f"{base}/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, response.status
        async with http.get(f"{base}/partials/checks", headers={"HX-Request": "true"}) as response:
            body = await response.text()
            client.etag = response.headers["ETag"]
        async with http.get(f"{base}/checks/new") as response:
            found = re.search(r'name="_csrf" value="([^"]+)"', await response.text())
        assert found is not None, body[:200]
        client.csrf = found.group(1)
        return client

    async def call(self, route: Route) -> float:
        headers = dict(route.headers)
        if "(poll, 304)" in route.name:
            headers["If-None-Match"] = self.etag
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if route.body is not None:
            body = route.body()
            if route.form:
                kwargs["data"] = [*body, ("_csrf", self.csrf)]
            else:
                kwargs["json"] = body
        started = time.perf_counter()
        async with self.http.request(route.method, self.base + route.path, **kwargs) as response:
            await response.read()
            elapsed = (time.perf_counter() - started) * 1000
            tally = [int(response.headers.get(f"x-bench-{key}", -1)) for key in ("cpu-us", "sql", "conns")]
            self.costs.setdefault(route.name, []).append((tally[0], tally[1], tally[2]))
            if response.status not in route.status:
                raise AssertionError(f"{route.name}: HTTP {response.status} {(await response.text())[:200]}")
            if "/partials/checks" in route.path:
                self.etag = response.headers.get("ETag", self.etag)
                if "(poll, 304)" in route.name:
                    self.not_modified.append(response.status == 304)
        return elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def report(title: str, samples: dict[str, list[float]], table: list[Route], wall: float) -> list[str]:
    total = sum(len(v) for v in samples.values())
    print(f"\n{title}: {total} requests in {wall:.1f} s ({total / wall:.0f} req/s)")
    print(f"{'route':<40} {'n':>5} {'p50':>8} {'p95':>8} {'p99':>8} {'goal':>6}")
    misses = []
    for route in table:
        values = samples[route.name]
        p99 = pct(values, 0.99)
        flag = "" if p99 <= route.goal_ms else "  MISS"
        if flag:
            misses.append(route.name)
        print(
            f"{route.name:<40} {len(values):>5} {pct(values, 0.5):>8.1f} {pct(values, 0.95):>8.1f} "
            f"{p99:>8.1f} {route.goal_ms:>6.0f}{flag}"
        )
    return misses


async def measure(
    base: str, table: list[Route], *, clients: int, rounds: int
) -> tuple[dict[str, list[float]], float]:
    """``clients`` clients each going ``rounds`` times through every route (each in its own order)."""
    opened = [await Client.open(base) for _ in range(clients)]
    for client in opened:  # warm: templates, prepared statements, pools
        for route in table:
            await client.call(route)
    samples: dict[str, list[float]] = {route.name: [] for route in table}
    for client in opened:
        client.costs.clear()

    async def drive(index: int, client: Client) -> None:
        for turn in range(rounds):
            shift = (index * 7 + turn) % len(table)
            for route in table[shift:] + table[:shift]:
                samples[route.name].append(await client.call(route))

    started = time.perf_counter()
    try:
        await asyncio.gather(*(drive(i, c) for i, c in enumerate(opened)))
    finally:
        for client in opened:
            await client.http.close()
    wall = time.perf_counter() - started
    polls = [hit for client in opened for hit in client.not_modified[1:]]
    if polls:
        print(f"polls with If-None-Match answered 304: {sum(polls)}/{len(polls)}")
    for client in opened:
        for name, values in client.costs.items():
            COSTS.setdefault(name, []).extend(values)
    return samples, wall


#: Per route, (worker CPU µs, SQL statements, connection checkouts) of every measured request.
COSTS: dict[str, list[tuple[int, int, int]]] = {}


def report_costs(table: list[Route]) -> None:
    """Median worker CPU per request and the statements and pooled connections it used: steadier than
    wall-clock percentiles on a shared machine, and what a change to a page should move."""
    print(f"\nworker cost per request (median): {'cpu ms':>8} {'sql':>5} {'conns':>6}")
    total = 0.0
    for route in table:
        values = COSTS.get(route.name, [])
        if not values:
            continue
        cpu = sorted(v[0] for v in values)[len(values) // 2] / 1000
        total += cpu
        sql = sorted(v[1] for v in values)[len(values) // 2]
        conns = sorted(v[2] for v in values)[len(values) // 2]
        print(f"{route.name:<40} {cpu:>8.2f} {sql:>5} {conns:>6}")
    print(f"{'one pass over every route':<40} {total:>8.1f}")


async def wait_up(base: str, within: float) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the api did not start")
            await asyncio.sleep(0.2)


async def main(args: argparse.Namespace) -> int:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{args.database}"
    size = await prepare(args, url)
    print(f"data: {json.dumps(size)}")
    if args.seed_only:
        return 0
    found = await ids(url)
    table = routes(found)
    port = args.port
    workers = [
        subprocess.Popen(  # noqa: ASYNC220 (started once, before any measuring)
            [sys.executable, __file__, "--serve", "--database", args.database, "--port", str(port)]
        )
        for _ in range(args.workers)
    ]
    base = f"http://127.0.0.1:{port}"
    misses: list[str] = []
    try:
        await wait_up(base, 60)
        await asyncio.sleep(1.0)  # let every worker finish starting
        load = os.getloadavg()[0]
        print(f"api: {args.workers} worker process(es); load {load:.1f} (1-min) on {os.cpu_count()} cores")
        samples, wall = await measure(base, table, clients=1, rounds=args.rounds)
        report("sequential, 1 client", samples, table, wall)
        report_costs(table)
        COSTS.clear()
        if args.sequential_only:
            return 0
        samples, wall = await measure(base, table, clients=args.clients, rounds=max(1, args.rounds // 2))
        misses = report(f"concurrent, {args.clients} keep-alive clients", samples, table, wall)
        print(f"\nload after: {os.getloadavg()[0]:.1f}; routes over their goal: {misses or 'none'}")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
        if args.drop:
            psql(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            print(f"dropped {args.database}")
    return 1 if misses else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default="seymour_ui_scale")
    parser.add_argument("--busy", type=int, default=170, help="checks every minute (default 170)")
    parser.add_argument("--idle", type=int, default=9830, help="checks every hour (default 9,830)")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--workers", type=int, default=2, help="api processes (default 2)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=20, help="passes over every route per client")
    parser.add_argument("--port", type=int, default=18777)
    parser.add_argument("--reseed", action="store_true", help="drop and seed again")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    parser.add_argument("--seed-only", action="store_true", help="seed (if needed) and stop")
    parser.add_argument(
        "--sequential-only", action="store_true", help="measure with one client only (costs per route)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(
            serve(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{arguments.database}", arguments.port)
        )
        sys.exit(0)
    sys.exit(asyncio.run(main(arguments)))
