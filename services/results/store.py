"""Batched, idempotent writes: runs (insert-or-ignore on ``run_id``), their rollups, runner heartbeats."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.db.models import Run, Runner, RunRollup
from services.results import rollups


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
    deltas: dict[tuple[uuid.UUID, str, datetime], dict[str, Any]] = defaultdict(rollups.empty)
    for row in rows:
        key = (row["check_id"], row["region"], rollups.hour_of(row["completed_at"]))
        rollups.add_run(deltas[key], row["status"], row["total_ms"], row["status_code"] is not None)
    if not deltas:
        return
    seed = [{"check_id": c, "region": r, "bucket": b, **rollups.empty()} for (c, r, b) in deltas]
    await session.execute(
        _insert(session, RunRollup).on_conflict_do_nothing(index_elements=["check_id", "region", "bucket"]),
        seed,
    )
    for (check_id, region, bucket), delta in deltas.items():
        query = select(RunRollup).where(
            RunRollup.check_id == check_id, RunRollup.region == region, RunRollup.bucket == bucket
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update()
        current = (await session.execute(query)).scalar_one()
        merged = {
            "total": current.total,
            "responded": current.responded,
            "passed": current.passed,
            "failed": current.failed,
            "errors": current.errors,
            "missed": current.missed,
            "sum_ms": current.sum_ms,
            "latency_hist": dict(current.latency_hist or {}),
        }
        rollups.merge(merged, delta)
        for column, value in merged.items():
            setattr(current, column, value)


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
