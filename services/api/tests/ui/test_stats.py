"""Summaries and chart series come from the stored runs (raw for short windows, rollups for long)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from contracts.v1.base import utcnow
from contracts.v1.regions import display_name
from services.api import stats
from services.common.db import rollups
from services.common.db.models import Incident, Run, RunRollup
from services.common.db.rollups import exact_percentile

from .conftest import TOKEN, Ui, run_row, store_runs

REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
API = {"Authorization": f"Bearer {TOKEN}"}


async def seed(ui: Ui, check_id: uuid.UUID, hours: int) -> None:
    now = utcnow()
    rows = []
    for minute in range(0, hours * 60, 10):
        for offset, region in enumerate(REGIONS):
            status = "failed" if minute % 70 == 0 else ("error" if minute % 130 == 0 else "passed")
            rows.append(
                run_row(
                    check_id,
                    region,
                    now - timedelta(minutes=minute),
                    status=status,
                    ms=50 + 40 * offset + minute % 7,
                )
            )
    await store_runs(ui.sessions, rows)


@pytest.mark.parametrize(
    ("window", "interval", "resolution"),
    [("1h", 60, "run"), ("24h", 600, "run"), ("7d", 60, "hour")],
    ids=["1h-raw", "24h-raw", "7d-rollups"],
)
async def test_chart_series_per_region_match_the_database(
    ui: Ui, window: str, interval: int, resolution: str
) -> None:
    check_id = uuid.uuid4()
    await seed(ui, check_id, hours=30)
    chart = await stats.chart(ui.sessions, check_id, window=window, interval=interval, regions=REGIONS)
    assert chart["resolution"] == resolution
    assert [series["region"] for series in chart["series"]] == REGIONS
    since = utcnow() - stats.WINDOWS[window]
    async with ui.sessions() as session:
        runs = (await session.execute(select(Run).where(Run.check_id == check_id))).scalars().all()
    for series in chart["series"]:
        mine = sorted(
            (run for run in runs if run.region == series["region"] and run.completed_at >= since),
            key=lambda run: run.completed_at,
        )
        if resolution == "run":
            assert series["t"] == [round(run.completed_at.timestamp(), 3) for run in mine]
            assert series["ms"] == [run.total_ms for run in mine]
            assert series["failed"] == [0 if run.status == "passed" else 1 for run in mine]
        else:
            hourly: dict[float, list[Run]] = {}
            for run in runs:
                if run.region == series["region"]:
                    bucket = run.completed_at.replace(minute=0, second=0, microsecond=0)
                    if bucket >= since.replace(minute=0, second=0, microsecond=0):
                        hourly.setdefault(bucket.timestamp(), []).append(run)
            assert series["t"] == sorted(hourly)
            for t, ms, failed in zip(series["t"], series["ms"], series["failed"], strict=True):
                members = hourly[t]
                assert ms == pytest.approx(sum(r.total_ms for r in members) / len(members), abs=0.01)
                assert failed == sum(1 for r in members if r.status != "passed")


async def test_summary_from_raw_runs_is_exact(ui: Ui) -> None:
    check_id = uuid.uuid4()
    await seed(ui, check_id, hours=2)
    summary = await stats.summary(ui.sessions, check_id, window="1h", interval=600, regions=REGIONS)
    assert summary["source"] == "runs"
    since = utcnow() - timedelta(hours=1)
    async with ui.sessions() as session:
        runs = (
            (await session.execute(select(Run).where(Run.check_id == check_id, Run.completed_at >= since)))
            .scalars()
            .all()
        )
    overall = summary["overall"]
    assert overall["total"] == len(runs)
    assert overall["failures"] == sum(1 for r in runs if r.status in ("failed", "error"))
    assert overall["p50_ms"] == round(exact_percentile([r.total_ms for r in runs], 0.5), 1)
    passed = sum(1 for r in runs if r.status == "passed")
    assert overall["pass_rate"] == round(100 * passed / len(runs), 2)
    answered = sum(1 for r in runs if r.status_code is not None)
    assert overall["availability"] == round(100 * answered / len(runs), 2)
    assert [r["region"] for r in summary["regions"]] == REGIONS


async def test_summary_over_30_days_reads_rollups(ui: Ui) -> None:
    check_id = uuid.uuid4()
    await seed(ui, check_id, hours=30)
    summary = await stats.summary(ui.sessions, check_id, window="30d", interval=60, regions=REGIONS)
    assert summary["source"] == "rollups"
    async with ui.sessions() as session:
        total = len((await session.execute(select(Run.run_id).where(Run.check_id == check_id))).all())
    assert summary["overall"]["total"] == total
    assert 50 <= summary["overall"]["p50_ms"] <= 140
    now = utcnow()
    for window in ("7d", "30d"):
        added_up = await stats.summary(
            ui.sessions, check_id, window=window, interval=60, regions=REGIONS, now=now
        )
        assert added_up == await summary_merged_in_python(ui.sessions, check_id, window, now)


async def summary_merged_in_python(
    sessions: Any, check_id: uuid.UUID, window: str, now: Any
) -> dict[str, Any]:
    """The rollup summary as it was worked out before the database added the rollups up: every hourly
    row read and merged here. Both ways must agree to the count and the percentile."""
    since = now - stats.WINDOWS[window]
    async with sessions() as session:
        rows = (
            await session.execute(
                select(RunRollup).where(
                    RunRollup.check_id == check_id, RunRollup.bucket >= rollups.hour_of(since)
                )
            )
        ).scalars()
        per_region: dict[str, dict[str, Any]] = {}
        for row in rows:
            rollups.merge(
                per_region.setdefault(row.region, rollups.empty()),
                {name: getattr(row, name) for name in (*rollups.COUNTERS, "latency_hist")},
            )
    overall = rollups.empty()
    regions = []
    for region in REGIONS:
        counts = per_region.get(region, rollups.empty())
        rollups.merge(overall, counts)
        regions.append(
            {"region": region, "name": display_name(region), **stats._percentiles(counts, None, False)}
        )
    return {
        "window": window,
        "since": since.isoformat().replace("+00:00", "Z"),
        "source": "rollups",
        "overall": stats._percentiles(overall, None, False),
        "regions": regions,
    }


async def test_latest_runs_of_many_checks(ui: Ui) -> None:
    now = utcnow()
    ids = []
    for name in ("a", "b", "c"):
        created = await ui.client.post(
            "/api/v1/checks",
            headers=API,
            json={"name": name, "request": {"url": "https://example.com/"}, "regions": ["us-east-1"]},
        )
        ids.append(uuid.UUID(created.json()["id"]))
    await store_runs(
        ui.sessions,
        [
            run_row(check_id, "us-east-1", now - timedelta(minutes=m))
            for check_id in ids[:2]
            for m in range(5)
        ],
    )
    latest = await stats.latest_runs(ui.sessions, ids)
    assert [len(latest[check_id]) for check_id in ids] == [3, 3, 0]
    assert [mark.completed_at for mark in latest[ids[0]]] == [now - timedelta(minutes=m) for m in range(3)]


async def test_summary_chart_and_incidents_api(ui: Ui) -> None:
    created = await ui.client.post(
        "/api/v1/checks",
        headers=API,
        json={"name": "api", "request": {"url": "https://example.com/"}, "regions": ["us-east-1"]},
    )
    check_id = created.json()["id"]
    await store_runs(ui.sessions, [run_row(uuid.UUID(check_id), "us-east-1", utcnow(), ms=80)])
    async with ui.sessions() as session, session.begin():
        session.add(Incident(check_id=uuid.UUID(check_id), opened_at=utcnow(), failing_regions=["us-east-1"]))
    summary = (await ui.client.get(f"/api/v1/checks/{check_id}/summary?window=1h", headers=API)).json()
    assert summary["overall"]["total"] == 1
    assert summary["overall"]["p50_ms"] == 80
    incidents = (await ui.client.get(f"/api/v1/checks/{check_id}/incidents", headers=API)).json()
    assert [item["state"] for item in incidents["items"]] == ["open"]
    bad = await ui.client.get(f"/api/v1/checks/{check_id}/summary?window=2h", headers=API)
    assert bad.status_code == 400
    assert (await ui.client.get(f"/api/v1/checks/{check_id}/summary")).status_code == 401


async def test_users_and_tokens_api(ui: Ui) -> None:
    created = await ui.client.post(
        "/api/v1/users", headers=API, json={"username": "carol", "password": "pass-word-9"}
    )
    assert created.status_code == 201
    assert "password" not in created.text
    user_id = created.json()["id"]
    taken = await ui.client.post(
        "/api/v1/users", headers=API, json={"username": "carol", "password": "pass-word-9"}
    )
    assert taken.status_code == 409
    assert taken.json()["errors"] == [{"field": "username", "message": "taken"}]
    changed = await ui.client.put(
        f"/api/v1/users/{user_id}/password", headers=API, json={"password": "new-pass-99"}
    )
    assert changed.status_code == 204
    names = [u["username"] for u in (await ui.client.get("/api/v1/users", headers=API)).json()["items"]]
    assert names == ["admin", "carol"]
    assert (await ui.client.delete(f"/api/v1/users/{user_id}", headers=API)).status_code == 204
    token = (await ui.client.post("/api/v1/tokens", headers=API, json={"name": "deploy"})).json()
    assert token["token"].startswith("sey_")
    mine = {"Authorization": f"Bearer {token['token']}"}
    assert (await ui.client.get("/api/v1/tokens", headers=mine)).status_code == 200
    listed = (await ui.client.get("/api/v1/tokens", headers=API)).json()["items"]
    assert "token" not in listed[0]
    assert (await ui.client.delete(f"/api/v1/tokens/{token['id']}", headers=API)).status_code == 204
    assert (await ui.client.get("/api/v1/tokens", headers=mine)).status_code == 401
    schema = (await ui.client.get("/schema/openapi.json", headers=API)).json()
    for path in ("/api/v1/users", "/api/v1/tokens", "/api/v1/checks/{check_id}/summary"):
        assert path in schema["paths"]
    assert not any(path.startswith("/settings") for path in schema["paths"])


async def test_latest_runs_on_sqlite_search_runs_by_index(ui: Ui) -> None:
    """SQLite has no LATERAL: the latest runs must still reach runs by index, never by a scan."""
    check_ids = [uuid.uuid4(), uuid.uuid4()]
    for check_id in check_ids:
        await seed(ui, check_id, hours=2)
    async with ui.sessions() as session:
        await session.execute(text("ANALYZE"))
        for statement in [
            *stats._latest_union([*check_ids, uuid.uuid4()], 3),
            *stats._latest_union([*check_ids, uuid.uuid4()], 3, stats._KEY_COLUMNS),
        ]:
            compiled = statement.compile(session.bind, compile_kwargs={"literal_binds": True})
            plan = [row[-1] for row in await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))]
            assert not [step for step in plan if step.startswith("SCAN runs")], plan
            assert any("ix_runs_check_completed" in step for step in plan), plan
    marks = await stats.latest_runs(ui.sessions, [*check_ids, uuid.uuid4()])
    for check_id in check_ids:
        assert sorted(mark.region for mark in marks[check_id]) == sorted(REGIONS)
