"""Batched, idempotent writes: runs (insert-or-ignore on ``run_id``), their rollups, runner heartbeats."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db import rollups
from services.common.db.models import Run, Runner, RunRollup


def _insert(session: AsyncSession, table: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


async def write_runs(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert runs not stored yet; update their rollups. Returns the ids actually inserted."""
    if not rows:
        return []
    unique = list({row["run_id"]: row for row in rows}.values())
    statement = _insert(session, Run).on_conflict_do_nothing(index_elements=["run_id"]).returning(Run.run_id)
    result = (
        await session.execute(statement, unique)
        if len(unique) > 1
        else await session.execute(statement.values(unique[0]))
    )
    inserted = set(result.scalars().all())
    await _roll_up(session, [row for row in unique if row["run_id"] in inserted])
    return list(inserted)


async def _roll_up(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add a batch to its hourly rollups in three statements, however many rollups it touches.

    Seed missing rollups (insert-or-ignore), lock and read them all (``FOR UPDATE`` on PostgreSQL, in key
    order so two writers never deadlock), merge in Python, write them back by primary key. A round trip
    per rollup would make a batch over many checks as slow as one row per statement.
    """
    deltas: dict[tuple[uuid.UUID, str, datetime], dict[str, Any]] = defaultdict(rollups.empty)
    for row in rows:
        key = (row["check_id"], row["region"], rollups.hour_of(row["completed_at"]))
        rollups.add_run(deltas[key], row["status"], row["total_ms"], row["status_code"] is not None)
    if not deltas:
        return
    keys = sorted(deltas, key=lambda k: (str(k[0]), k[1], k[2]))
    seed = [{"check_id": c, "region": r, "bucket": b, **rollups.empty()} for (c, r, b) in keys]
    await session.execute(
        _insert(session, RunRollup).on_conflict_do_nothing(index_elements=["check_id", "region", "bucket"]),
        seed,
    )
    query = (
        select(RunRollup)
        .where(tuple_(RunRollup.check_id, RunRollup.region, RunRollup.bucket).in_(keys))
        .order_by(RunRollup.check_id, RunRollup.region, RunRollup.bucket)
        .execution_options(populate_existing=True)
    )
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    updates = []
    for current in (await session.execute(query)).scalars():
        merged = {column: getattr(current, column) for column in rollups.COUNTERS}
        merged["latency_hist"] = dict(current.latency_hist or {})
        rollups.merge(merged, deltas[(current.check_id, current.region, current.bucket)])
        updates.append(
            {"check_id": current.check_id, "region": current.region, "bucket": current.bucket, **merged}
        )
    await session.execute(update(RunRollup), updates)


async def write_heartbeats(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert the latest heartbeat of each runner."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["runner_id"] not in latest or latest[row["runner_id"]]["last_seen"] < row["last_seen"]:
            latest[row["runner_id"]] = row
    if not latest:
        return
    statement = _insert(session, Runner)
    statement = statement.on_conflict_do_update(
        index_elements=["runner_id"],
        set_={
            "region": statement.excluded.region,
            "version": statement.excluded.version,
            "capacity": statement.excluded.capacity,
            "in_flight": statement.excluded.in_flight,
            "started_at": statement.excluded.started_at,
            "last_seen": statement.excluded.last_seen,
            "interval_s": statement.excluded.interval_s,
        },
    )
    await session.execute(statement, list(latest.values()))
