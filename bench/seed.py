"""Seed PostgreSQL with checks, runs and their hourly rollups in a few set-based statements.

Runs come from ``generate_series`` (one per check × region × slot, each check at its own stable offset
inside its interval); rollups are computed from those runs in SQL with the same buckets as
``services.results.rollups`` (a test compares them with the app's own rollup code). Ten million runs
take minutes instead of the hours that inserting them through the results service would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from contracts.v1 import CheckSpec
from services.common.db.rollups import BOUNDS_MS

REGIONS: Final = ("us-east-1", "eu-north-1", "ca-central-1")


@dataclass(frozen=True)
class Shape:
    """How much to seed: ``busy`` checks every ``busy_interval`` s, ``idle`` ones every ``idle_interval``."""

    busy: int
    idle: int
    days: float
    busy_interval: int = 60
    idle_interval: int = 3600
    regions: tuple[str, ...] = REGIONS


def check_spec(interval: int, regions: tuple[str, ...]) -> dict[str, Any]:
    """A valid stored check spec (its name is filled in per row by the seeding SQL)."""
    return CheckSpec.model_validate(
        {
            "name": "seed",
            "request": {"method": "GET", "url": "https://api.example.com/health"},
            "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
            "regions": list(regions),
            "interval": interval,
        }
    ).model_dump(mode="json")


_CHECKS: Final = text(
    """
    INSERT INTO checks (id, name, spec, enabled, revision, created_at, updated_at)
    SELECT gen_random_uuid(), :prefix || lpad(i::text, 6, '0'),
           jsonb_set(CAST(:spec AS jsonb), '{name}', to_jsonb(:prefix || lpad(i::text, 6, '0')))::json,
           true, 1, CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM generate_series(1, :count) AS i
    """
)

_RUNS: Final = text(
    """
    INSERT INTO runs (run_id, check_id, region, slot, trigger, status, started_at, completed_at, total_ms,
                      status_code, error_class, error_message, assertions_passed, assertions_total,
                      degraded, timings, response, assertions, request, runner_id, stored_at)
    SELECT gen_random_uuid(), c.id, r.region, s.slot, 'scheduled', x.status, s.slot,
           s.slot + interval '300 milliseconds',
           CASE WHEN x.status = 'error' THEN NULL ELSE x.ms END,
           CASE x.status WHEN 'passed' THEN 200 WHEN 'failed' THEN 503 END,
           CASE x.status WHEN 'failed' THEN 'assertion' WHEN 'error' THEN 'connect' END,
           CASE WHEN x.status = 'error' THEN 'connection refused' END,
           CASE WHEN x.status = 'passed' THEN 1 ELSE 0 END, 1, false,
           json_build_object('dns_ms', 1.0, 'connect_ms', 2.0, 'ttfb_ms', x.ms - 4, 'download_ms', 1.0,
                             'total_ms', x.ms),
           CASE WHEN x.status <> 'error' THEN json_build_object(
               'status_code', CASE WHEN x.status = 'passed' THEN 200 ELSE 503 END,
               'headers', json_build_object('content-type', 'application/json'),
               'body', '{"ok": true}', 'truncated', false, 'size', 12) END,
           json_build_array(json_build_object(
               'source', 'status_code', 'property', NULL, 'comparison', 'equals', 'target', 200,
               'observed', CASE x.status WHEN 'passed' THEN 200 WHEN 'failed' THEN 503 END,
               'passed', x.status = 'passed', 'message', NULL)),
           json_build_object('method', 'GET', 'url', 'https://api.example.com/health'),
           'seed-' || r.region, s.slot + interval '400 milliseconds'
    FROM checks AS c
    CROSS JOIN unnest(CAST(:regions AS text[])) AS r(region)
    CROSS JOIN LATERAL generate_series(
        CAST(:since AS timestamptz) + make_interval(secs => abs(hashtext(c.id::text)) % :interval),
        CAST(:now AS timestamptz) - interval '1 second',
        make_interval(secs => :interval)) AS s(slot)
    CROSS JOIN LATERAL (
        SELECT round((40 + 300 * v.u2)::numeric, 2)::float8 AS ms,
               CASE WHEN v.u < 0.02 THEN 'failed' WHEN v.u < 0.025 THEN 'error' ELSE 'passed' END AS status
        FROM (SELECT random() AS u, random() AS u2, s.slot AS keep) AS v
    ) AS x
    WHERE c.name LIKE :prefix || '%'
    """
)

# bisect_left over BOUNDS_MS: the first bound >= ms, or 'inf' past the last one.
_BUCKET: Final = """
    CASE WHEN total_ms IS NULL OR status = 'missed' THEN NULL
         WHEN width_bucket(total_ms, {bounds}) > 0 AND total_ms = ({bounds})[width_bucket(total_ms, {bounds})]
              THEN ({ints})[width_bucket(total_ms, {bounds})]::text
         WHEN width_bucket(total_ms, {bounds}) >= {count} THEN 'inf'
         ELSE ({ints})[width_bucket(total_ms, {bounds}) + 1]::text END
""".format(
    bounds="ARRAY[{}]::float8[]".format(",".join(str(b) for b in BOUNDS_MS)),
    ints="ARRAY[{}]::int[]".format(",".join(str(b) for b in BOUNDS_MS)),
    count=len(BOUNDS_MS),
)

_ROLLUPS: Final = text(
    f"""
    INSERT INTO run_rollups (check_id, region, bucket, total, responded, passed, failed, errors, missed,
                             sum_ms, latency_hist)
    SELECT check_id, region, bucket, sum(n), sum(responded), sum(passed), sum(failed), sum(errors),
           sum(missed), sum(sum_ms),
           COALESCE(json_object_agg(hkey, measured) FILTER (WHERE hkey IS NOT NULL), '{{}}'::json)
    FROM (
        SELECT check_id, region, date_trunc('hour', completed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                   AS bucket,
               hkey, count(*) AS n, count(status_code) AS responded,
               count(*) FILTER (WHERE status = 'passed') AS passed,
               count(*) FILTER (WHERE status = 'failed') AS failed,
               count(*) FILTER (WHERE status = 'error') AS errors,
               count(*) FILTER (WHERE status = 'missed') AS missed,
               COALESCE(sum(total_ms) FILTER (WHERE hkey IS NOT NULL), 0) AS sum_ms,
               count(*) FILTER (WHERE hkey IS NOT NULL) AS measured
        FROM (SELECT check_id, region, completed_at, status, status_code, total_ms, {_BUCKET} AS hkey
              FROM runs) AS r
        GROUP BY 1, 2, 3, 4
    ) AS g
    GROUP BY 1, 2, 3
    """
)


async def seed(
    conn: AsyncConnection, shape: Shape, *, now: datetime, prefix: str = "check-"
) -> dict[str, Any]:
    """Insert ``shape``'s checks, their runs over ``shape.days`` before ``now``, and the runs' hourly
    rollups; then ANALYZE. Returns row counts and seconds per step."""
    since = now.timestamp() - shape.days * 86400
    since_at = datetime.fromtimestamp(since, tz=now.tzinfo)
    timings: dict[str, float] = {}
    for label, count, interval in (
        ("busy", shape.busy, shape.busy_interval),
        ("idle", shape.idle, shape.idle_interval),
    ):
        if not count:
            continue
        started = time.perf_counter()
        group = f"{prefix}{label}-"
        spec = json.dumps(check_spec(interval, shape.regions))
        await conn.execute(_CHECKS, {"prefix": group, "spec": spec, "now": now, "count": count})
        await conn.execute(
            _RUNS,
            {
                "prefix": group,
                "regions": list(shape.regions),
                "since": since_at,
                "now": now,
                "interval": interval,
            },
        )
        timings[f"runs_{label}_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    await conn.execute(_ROLLUPS)
    timings["rollups_s"] = round(time.perf_counter() - started, 1)
    await conn.commit()
    started = time.perf_counter()
    autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
    # checks is small but wide (specs inline): vacuumed, its visibility map lets counts and the table's
    # page use index-only scans, as autovacuum would have it on a database that has been running a while
    # (a bulk load leaves it unset: count(*) of 10,000 checks 4.1 ms by a scan, 1.5 ms index-only).
    await autocommit.exec_driver_sql("VACUUM ANALYZE checks")
    await autocommit.exec_driver_sql("ANALYZE runs, run_rollups")
    timings["analyze_s"] = round(time.perf_counter() - started, 1)
    sizes = await data_size(conn)
    return {**sizes, **timings}


async def data_size(conn: AsyncConnection) -> dict[str, Any]:
    """Row counts (estimated from statistics, so instant) and on-disk sizes of the big tables."""
    out: dict[str, Any] = {}
    for table in ("checks", "runs", "run_rollups"):
        rows = (
            await conn.execute(
                text(
                    "SELECT reltuples::bigint, pg_total_relation_size(oid) FROM pg_class WHERE relname = :t"
                ),
                {"t": table},
            )
        ).one()
        out[f"{table}_rows"] = int(rows[0])
        out[f"{table}_mb"] = round(rows[1] / 2**20)
    return out
