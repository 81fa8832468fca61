"""The results writer on PostgreSQL: a whole batch in two statements on the driver connection.

A batch of runs goes in as one ``INSERT … SELECT FROM unnest(arrays) ON CONFLICT (run_id) DO NOTHING
RETURNING run_id`` (one round trip, binary arrays, a statement asyncpg prepares once per connection),
and its rollups as one ``INSERT … ON CONFLICT DO UPDATE`` that adds the batch's counts and histogram to
what is stored. Through the ORM the same batch took an ``INSERT … VALUES`` rendered for every row plus
three rollup statements with ORM objects, and cost the results process most of its CPU per run.

Idempotency is the primary key's: a redelivered run (same deterministic ``run_id``) inserts nothing and
is not returned, so it is not counted into the rollups twice. Rollup keys are sorted, so two writers lock
the same rows in the same order and never deadlock. SQLite keeps :mod:`services.results.store`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import asyncpg
from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import rollups

#: Column → PostgreSQL type of every ``runs`` column a row carries (``stored_at`` included).
RUN_COLUMNS: Final = (
    ("run_id", "uuid"),
    ("check_id", "uuid"),
    ("region", "varchar"),
    ("slot", "timestamptz"),
    ("trigger", "varchar"),
    ("status", "varchar"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
    ("total_ms", "float8"),
    ("status_code", "int4"),
    ("error_class", "varchar"),
    ("error_message", "text"),
    ("assertions_passed", "int4"),
    ("assertions_total", "int4"),
    ("degraded", "bool"),
    ("timings", "json"),
    ("response", "json"),
    ("assertions", "json"),
    ("request", "json"),
    ("runner_id", "varchar"),
    ("stored_at", "timestamptz"),
    ("steps", "json"),
    ("failed_step", "varchar"),
    ("certificate", "json"),
)
_JSON: Final = frozenset(name for name, kind in RUN_COLUMNS if kind == "json")

INSERT_RUNS: Final = (
    f"INSERT INTO runs ({', '.join(name for name, _ in RUN_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${n}::{kind}[]' for n, (_, kind) in enumerate(RUN_COLUMNS, 1))}) "
    "ON CONFLICT (run_id) DO NOTHING RETURNING run_id"
)

_COUNTERS: Final = rollups.COUNTERS
_ADDED: Final = ", ".join(f"{name} = run_rollups.{name} + excluded.{name}" for name in _COUNTERS)
UPSERT_ROLLUPS: Final = (
    f"INSERT INTO run_rollups (check_id, region, bucket, {', '.join(_COUNTERS)}, latency_hist) "
    "SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::timestamptz[], "
    + ", ".join(f"${n}::{'float8' if name == 'sum_ms' else 'int4'}[]" for n, name in enumerate(_COUNTERS, 4))
    + f", ${len(_COUNTERS) + 4}::json[]) "
    f"ON CONFLICT (check_id, region, bucket) DO UPDATE SET {_ADDED}, latency_hist = ("
    "SELECT coalesce(json_object_agg(k, n), '{}'::json) FROM ("
    "SELECT k, sum(v::bigint) AS n FROM ("
    "SELECT key AS k, value AS v FROM json_each_text(run_rollups.latency_hist) "
    "UNION ALL SELECT key, value FROM json_each_text(excluded.latency_hist)"
    ") AS parts GROUP BY k) AS merged)"
)

UPSERT_RUNNERS: Final = (
    "INSERT INTO runners"
    " (runner_id, region, version, capacity, in_flight, started_at, last_seen, interval_s) "
    "SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::int4[], $5::int4[], "
    "$6::timestamptz[], $7::timestamptz[], $8::float8[]) "
    "ON CONFLICT (runner_id) DO UPDATE SET region = excluded.region, version = excluded.version, "
    "capacity = excluded.capacity, in_flight = excluded.in_flight, started_at = excluded.started_at, "
    "last_seen = excluded.last_seen, interval_s = excluded.interval_s"
)
_RUNNER_FIELDS: Final = (
    "runner_id",
    "region",
    "version",
    "capacity",
    "in_flight",
    "started_at",
    "last_seen",
    "interval_s",
)


def _json(value: Any) -> str | None:
    return None if value is None else to_json(value).decode()


def run_arrays(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """One array per ``runs`` column (JSON columns as JSON text), in :data:`RUN_COLUMNS` order."""
    return [
        [_json(row[name]) for row in rows] if name in _JSON else [row[name] for row in rows]
        for name, _ in RUN_COLUMNS
    ]


def rollup_arrays(rows: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """The batch's rollup deltas as arrays for :data:`UPSERT_ROLLUPS`, sorted by key (lock order)."""
    deltas: dict[tuple[uuid.UUID, str, datetime], dict[str, Any]] = defaultdict(rollups.empty)
    for row in rows:
        key = (row["check_id"], row["region"], rollups.hour_of(row["completed_at"]))
        rollups.add_run(deltas[key], row["status"], row["total_ms"], row["status_code"] is not None)
    keys = sorted(deltas, key=lambda k: (str(k[0]), k[1], k[2]))
    return [
        [key[0] for key in keys],
        [key[1] for key in keys],
        [key[2] for key in keys],
        *([deltas[key][name] for key in keys] for name in _COUNTERS),
        [to_json(deltas[key]["latency_hist"]).decode() for key in keys],
    ]


def _latest_heartbeats(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["runner_id"] not in latest or latest[row["runner_id"]]["last_seen"] < row["last_seen"]:
            latest[row["runner_id"]] = row
    return [latest[runner] for runner in sorted(latest)]


async def write_batch(
    engine: AsyncEngine, runs: Sequence[dict[str, Any]], heartbeats: Sequence[dict[str, Any]]
) -> set[uuid.UUID]:
    """Store a batch in one transaction; returns the run ids actually inserted (not stored before).

    A lost connection is raised as :class:`ConnectionError`, which the batcher treats as the database
    being away (retry the batch as is); anything else is the data's fault (the batcher splits it).
    """
    unique = list({row["run_id"]: row for row in runs}.values())
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver: asyncpg.Connection = raw.driver_connection
        try:
            async with driver.transaction():
                inserted: set[uuid.UUID] = set()
                if unique:
                    records = await driver.fetch(INSERT_RUNS, *run_arrays(unique))
                    inserted = {record[0] for record in records}
                    fresh = [row for row in unique if row["run_id"] in inserted]
                    if fresh:
                        await driver.execute(UPSERT_ROLLUPS, *rollup_arrays(fresh))
                latest = _latest_heartbeats(heartbeats)
                if latest:
                    await driver.execute(
                        UPSERT_RUNNERS, *([row[name] for row in latest] for name in _RUNNER_FIELDS)
                    )
        except (
            asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError,
            asyncpg.CannotConnectNowError,
        ) as exc:
            await connection.invalidate()
            raise ConnectionError(f"database connection lost: {exc!r}") from exc
        except (asyncpg.AdminShutdownError, asyncpg.CrashShutdownError) as exc:
            await connection.invalidate()
            raise ConnectionError(f"database shut down: {exc!r}") from exc
    return inserted
