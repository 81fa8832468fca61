"""Every query behind the pages reads runs and rollups through an index, at a size where a scan hurts.

PostgreSQL with a few hundred thousand runs and fresh statistics: each page is requested, every statement
it sent is captured and EXPLAINed with its own parameters, and no plan may scan ``runs`` or
``run_rollups`` sequentially. The home page once joined runs through a correlated ``IN (… LIMIT 3)``,
which PostgreSQL planned as a scan of every run: 15 s for one check at ten million runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.seed import Shape, seed
from contracts.v1.base import utcnow
from services.api import stats
from services.api.accounts import create_user, load_session, open_session
from services.api.app import create_app
from services.api.server import ApiServer
from services.api.ui.security import SESSION_COOKIE
from services.common.db.engine import make_engine, make_sessionmaker, upgrade_sync
from services.common.settings import Settings

from .conftest import Published

pytestmark = pytest.mark.postgres

TOKEN = "plan-test-token"
SCANNED = {"runs", "run_rollups"}
PG_ADMIN_URL = os.environ.get("SEYMOUR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: 40 checks every minute from 3 regions for 2 days (~345k runs) and 200 hourly ones.
SHAPE = Shape(busy=40, idle=200, days=2)


def _psql(sql: str) -> None:
    subprocess.run(
        ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def seeded_url() -> Iterator[str]:
    """One seeded database for the module (seeding takes seconds; the tests only read)."""
    name = f"seymour_t_{uuid.uuid4().hex[:10]}"
    _psql(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        upgrade_sync(url)

        async def fill() -> None:
            engine = make_engine(url)
            async with engine.connect() as conn:
                await seed(conn, SHAPE, now=utcnow())
            await create_user(make_sessionmaker(engine), "admin", "correct horse battery", is_admin=True)
            await engine.dispose()

        asyncio.run(fill())
        yield url
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Recorder:
    """The statements an engine sent, with their parameters, while ``on``."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    on: bool = True

    def attach(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if self.on:
                self.statements.append((statement, parameters))


@dataclass
class Site:
    client: aiohttp.ClientSession
    engine: AsyncEngine
    sessions: Any
    recorder: Recorder
    csrf: str
    busy: uuid.UUID
    idle: uuid.UUID
    run: uuid.UUID

    async def plans(self) -> list[tuple[str, dict[str, Any]]]:
        """EXPLAIN every recorded SELECT (and UPDATE, for pause/resume) with its own parameters."""
        self.recorder.on = False
        out = []
        async with self.engine.connect() as conn:
            for statement, parameters in self.recorder.statements:
                if not statement.lstrip().upper().startswith(("SELECT", "WITH", "UPDATE")):
                    continue
                result = await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
                plan = result.scalar_one()
                out.append((statement, json.loads(plan) if isinstance(plan, str) else plan))
        self.recorder.statements.clear()
        self.recorder.on = True
        return out


@pytest.fixture
async def site(seeded_url: str) -> AsyncIterator[Site]:
    # A statement that scans every run takes minutes here: fail the page fast instead.
    engine = create_async_engine(seeded_url, connect_args={"server_settings": {"statement_timeout": "5000"}})
    sessions = make_sessionmaker(engine)
    async with engine.connect() as conn:
        busy, idle = [
            (await conn.execute(text("SELECT id FROM checks WHERE name = :n"), {"n": name})).scalar_one()
            for name in ("check-busy-000001", "check-idle-000001")
        ]
        run = (
            await conn.execute(
                text("SELECT run_id FROM runs WHERE check_id = :c ORDER BY completed_at DESC LIMIT 1"),
                {"c": busy},
            )
        ).scalar_one()
    from services.api.accounts import find_user

    user = await find_user(sessions, username="admin")
    cookie = await open_session(sessions, user)
    loaded = await load_session(sessions, cookie)
    assert loaded is not None
    recorder = Recorder()
    recorder.attach(engine)
    app = create_app(Settings(api_token=TOKEN), sessions=sessions, bus=Published())
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{server.port}", cookies={SESSION_COOKIE: cookie}
        ) as client:
            yield Site(client, engine, sessions, recorder, loaded.csrf_token, busy, idle, run)
    finally:
        await server.stop()
        await engine.dispose()


def seq_scans(plan: Any) -> list[str]:
    """Relations in ``SCANNED`` that a plan (EXPLAIN's JSON) reads with a sequential scan."""
    found = []
    if isinstance(plan, list):
        for item in plan:
            found += seq_scans(item)
    elif isinstance(plan, dict):
        if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in SCANNED:
            found.append(plan["Relation Name"])
        for value in plan.values():
            if isinstance(value, list | dict):
                found += seq_scans(value)
    return found


ROUTES = [
    ("home", "GET", "/"),
    ("home-1000-per-page", "GET", "/?per_page=1000"),
    ("home-page-2", "GET", "/?page=2&per_page=100"),
    ("checks-partial", "GET", "/partials/checks"),
    ("detail-busy-1h", "GET", "/checks/{busy}?window=1h"),
    ("detail-busy-24h", "GET", "/checks/{busy}"),
    ("detail-busy-7d", "GET", "/checks/{busy}?window=7d"),
    ("detail-busy-30d", "GET", "/checks/{busy}?window=30d"),
    ("detail-idle-24h", "GET", "/checks/{idle}"),
    ("latest-partial", "GET", "/checks/{busy}/partials/latest"),
    ("chart-24h", "GET", "/checks/{busy}/chart.json?window=24h"),
    ("chart-30d", "GET", "/checks/{busy}/chart.json?window=30d"),
    ("runs-page-1", "GET", "/checks/{busy}/runs"),
    ("runs-region", "GET", "/checks/{busy}/runs?region=eu-north-1"),
    ("runs-failed", "GET", "/checks/{busy}/runs?result=failed"),
    ("runs-passed-region", "GET", "/checks/{busy}/runs?result=passed&region=us-east-1"),
    ("runs-deep-older", "GET", "/checks/{busy}/runs?page=900&before={deep}"),
    ("runs-deep-newer", "GET", "/checks/{busy}/runs?page=900&after={deep}"),
    ("runs-deep-failed", "GET", "/checks/{busy}/runs?page=9&result=failed&before={deep}"),
    ("run-detail", "GET", "/runs/{run}"),
    ("edit-form", "GET", "/checks/{busy}/edit"),
    ("pause-from-table", "POST", "/checks/{idle}/pause"),
    ("resume-from-table", "POST", "/checks/{idle}/resume"),
    ("api-checks", "GET", "/api/v1/checks"),
    ("api-check", "GET", "/api/v1/checks/{busy}"),
    ("api-summary-24h", "GET", "/api/v1/checks/{busy}/summary"),
    ("api-summary-30d", "GET", "/api/v1/checks/{busy}/summary?window=30d"),
    ("api-chart-7d", "GET", "/api/v1/checks/{busy}/chart?window=7d"),
    ("api-incidents", "GET", "/api/v1/checks/{busy}/incidents"),
    ("api-run", "GET", "/api/v1/runs/{run}"),
    ("api-runs-deep", "GET", "/api/v1/checks/{busy}/runs?before={deep}"),
]


@pytest.mark.parametrize(
    ("method", "path"), [route[1:] for route in ROUTES], ids=[route[0] for route in ROUTES]
)
async def test_no_page_scans_all_runs(site: Site, method: str, path: str) -> None:
    deep = quote(f"{(utcnow() - timedelta(hours=30)).isoformat().replace('+00:00', 'Z')}~{uuid.UUID(int=0)}")
    url = path.format(busy=site.busy, idle=site.idle, run=site.run, deep=deep)
    headers = {"Authorization": f"Bearer {TOKEN}"} if url.startswith("/api/") else {"HX-Request": "true"}
    form = {"_csrf": site.csrf} if method == "POST" else None
    async with site.client.request(
        method, url, headers=headers, data=form, allow_redirects=False
    ) as response:
        assert response.status == 200, (await response.text())[:300]
    plans = await site.plans()
    assert plans, "the page sent no query"
    scanning = [(statement, seq_scans(plan)) for statement, plan in plans if seq_scans(plan)]
    assert not scanning, scanning


async def test_an_unchanged_polled_table_answers_304_from_a_few_indexed_reads(site: Site) -> None:
    """The poll with ``If-None-Match`` reads versions only: no spec, no run details, no scan."""
    htmx = {"HX-Request": "true"}
    async with site.client.get("/partials/checks", headers=htmx) as drawn:
        assert drawn.status == 200
        etag = drawn.headers["ETag"]
    await site.plans()
    async with site.client.get("/partials/checks", headers={**htmx, "If-None-Match": etag}) as polled:
        assert polled.status == 304
    statements = [statement for statement, _ in site.recorder.statements]
    plans = await site.plans()
    assert not [statement for statement, plan in plans if seq_scans(plan)]
    assert len(statements) == 2, statements  # the session; the page with its versions and count
    assert not [
        statement for statement in statements if "checks.spec" in statement or "runs.response" in statement
    ]


async def test_a_redrawn_table_reads_and_draws_only_the_lines_that_changed(site: Site) -> None:
    """Drawn lines are kept by version: redrawing an unchanged table reads versions only, and after a
    check changes, only that check's spec fields, runs and incident are read."""
    htmx = {"HX-Request": "true"}
    async with site.client.get("/partials/checks", headers=htmx) as first:
        assert first.status == 200
        drawn = await first.text()
    await site.plans()
    async with site.client.get("/partials/checks", headers=htmx) as again:
        assert again.status == 200
        assert await again.text() == drawn
    statements = [statement for statement, _ in site.recorder.statements]
    assert len(statements) == 2, statements
    assert not [statement for statement in statements if "checks.spec" in statement]
    await site.plans()

    async with site.engine.begin() as conn:
        first_id = (await conn.execute(text("SELECT id FROM checks ORDER BY name, id LIMIT 1"))).scalar_one()
        await conn.execute(text("UPDATE checks SET revision = revision + 1 WHERE id = :c"), {"c": first_id})
    async with site.client.get("/partials/checks", headers=htmx) as changed:
        assert changed.status == 200
        # A new revision of the same spec draws the same line (the table's ETag changes).
        assert _without_etag(await changed.text()) == _without_etag(drawn)
    reads = [
        (statement, params) for statement, params in site.recorder.statements if "checks.spec" in statement
    ]
    assert len(reads) == 1, reads
    assert [first_id] in [list(value) for value in _values(reads[0][1]) if isinstance(value, list)]
    assert not [statement for statement, plan in await site.plans() if seq_scans(plan)]


async def test_a_new_run_changes_its_line_and_the_etag(site: Site) -> None:
    """A line's version names its newest runs by id and status: a run stored since the last draw gives
    the table a new ETag and that line its new mark, and nothing else changes."""
    from .conftest import run_row, store_runs

    htmx = {"HX-Request": "true"}
    async with site.client.get("/partials/checks", headers=htmx) as first:
        etag, drawn = first.headers["ETag"], await first.text()
    async with site.engine.connect() as conn:
        first_id = (await conn.execute(text("SELECT id FROM checks ORDER BY name, id LIMIT 1"))).scalar_one()
    row = run_row(first_id, "eu-north-1", utcnow(), status="failed", status_code=503)
    await store_runs(site.sessions, [row])
    async with site.client.get("/partials/checks", headers={**htmx, "If-None-Match": etag}) as changed:
        assert changed.status == 200
        assert changed.headers["ETag"] != etag
        body = await changed.text()
    line = re.search(rf'<tr id="check-{first_id}".*?</tr>', body, re.S)
    assert line is not None
    assert f'href="/runs/{row["run_id"]}" class="mark mark-failed"' in line.group(0)
    others = re.sub(rf'<tr id="check-{first_id}".*?</tr>', "", body, flags=re.S)
    assert _without_etag(others) == _without_etag(
        re.sub(rf'<tr id="check-{first_id}".*?</tr>', "", drawn, flags=re.S)
    )


def _without_etag(html: str) -> str:
    return re.sub(r'data-etag="[^"]*"', "", html, count=1)


def _values(params: Any) -> list[Any]:
    """The parameter values of a recorded statement (a tuple, a dict, or a list of them)."""
    if isinstance(params, dict):
        return list(params.values())
    if isinstance(params, list | tuple):
        return [item for value in params for item in (_values(value) if isinstance(value, dict) else [value])]
    return [params]


@pytest.mark.parametrize("result", ["failed", "missed"])
async def test_runs_that_did_not_pass_are_read_from_their_partial_index(site: Site, result: str) -> None:
    """The result filters read ``ix_runs_check_not_passed``: a page of failures costs its fifty rows,
    not the thousands of passes between them."""
    path = f"/checks/{site.busy}/runs?result={result}"
    async with site.client.get(path, headers={"HX-Request": "true"}) as response:
        assert response.status == 200
    plans = [(statement, plan) for statement, plan in await site.plans() if "FROM runs" in statement]
    assert plans
    for statement, plan in plans:
        assert "ix_runs_check_not_passed" in json.dumps(plan), (statement, plan)


async def test_rollup_summaries_added_up_by_postgresql_match_merging_in_python(site: Site) -> None:
    from .test_stats import REGIONS, summary_merged_in_python

    now = utcnow()
    for window in ("24h", "7d"):
        added_up = await stats.summary(
            site.sessions, site.busy, window=window, interval=60, regions=REGIONS, now=now
        )
        assert added_up["source"] == "rollups"
        assert added_up["overall"]["total"] > 1000
        assert added_up == await summary_merged_in_python(site.sessions, site.busy, window, now)


async def test_latest_runs_of_a_page_of_checks_match_the_newest_runs(site: Site) -> None:
    async with site.engine.connect() as conn:
        ids = list((await conn.execute(text("SELECT id FROM checks ORDER BY name LIMIT 60"))).scalars())
        expected = {
            check_id: list(
                (
                    await conn.execute(
                        text(
                            "SELECT run_id FROM runs WHERE check_id = :c "
                            "ORDER BY completed_at DESC, run_id DESC LIMIT 3"
                        ),
                        {"c": check_id},
                    )
                ).scalars()
            )
            for check_id in ids
        }
    marks = await stats.latest_runs(site.sessions, ids)
    assert {check_id: [mark.run_id for mark in found] for check_id, found in marks.items()} == expected
    assert all(len(found) == 3 for found in expected.values())


async def test_seeded_rollups_match_the_apps_rollup_code(site: Site) -> None:
    """The seeder's SQL rollups equal what the results service would have written for the same runs."""
    from services.common.db import rollups

    async with site.engine.connect() as conn:
        runs = (
            await conn.execute(
                text(
                    "SELECT region, completed_at, status, total_ms, status_code FROM runs "
                    "WHERE check_id = :c AND completed_at >= :since"
                ),
                {"c": site.busy, "since": utcnow() - timedelta(hours=5)},
            )
        ).all()
        stored = (
            await conn.execute(
                text(
                    "SELECT region, bucket, total, responded, passed, failed, errors, missed, sum_ms, "
                    "latency_hist FROM run_rollups WHERE check_id = :c AND bucket >= :since"
                ),
                {"c": site.busy, "since": rollups.hour_of(utcnow() - timedelta(hours=4))},
            )
        ).all()
    expected: dict[tuple[str, Any], dict[str, Any]] = {}
    for region, completed_at, status, total_ms, status_code in runs:
        key = (region, rollups.hour_of(completed_at))
        rollups.add_run(expected.setdefault(key, rollups.empty()), status, total_ms, status_code is not None)
    assert len(stored) >= 12
    for region, bucket, *counts, sum_ms, hist in stored:
        want = expected[(region, bucket)]
        assert counts == [want[k] for k in ("total", "responded", "passed", "failed", "errors", "missed")]
        assert sum_ms == pytest.approx(want["sum_ms"])
        assert hist == want["latency_hist"]
