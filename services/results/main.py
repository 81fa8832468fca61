"""Results composition root: settings → batcher → routes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from contracts.topology import RESULTS_STORE
from contracts.v1 import (
    CheckCompleted,
    CheckCompletedBatch,
    RunMissed,
    RunMissedBatch,
    RunnerHeartbeat,
    utcnow,
)
from services.common.bus import Batch, Bus, Route
from services.common.db.batches import Batcher
from services.common.db.sessions import Sessions
from services.common.metrics import RUN_LAG, RUNS_STORED
from services.common.service import Service
from services.common.settings import Settings
from services.results import pg
from services.results.handlers import (
    BATCHED,
    handle_check_completed,
    handle_check_completed_batch,
    handle_run_missed,
    handle_run_missed_batch,
    handle_runner_heartbeat,
    items_in,
    store_batch,
)
from services.results.retention import Retention
from services.results.store import write_heartbeats, write_runs


def count_stored(rows: list[dict[str, Any]], stored_at: datetime) -> None:
    """Count newly stored runs by region and status, and their slot→stored lag (scheduled runs only)."""
    for (region, status), count in Counter((row["region"], row["status"]) for row in rows).items():
        RUNS_STORED.labels(region, status).inc(count)
    for row in rows:
        if row["trigger"] == "scheduled":
            RUN_LAG.labels(row["region"]).observe(max((stored_at - row["slot"]).total_seconds(), 0.0))


def build(settings: Settings, bus: Bus, sessions: Sessions) -> Service:
    """The results writer: one transaction per batch, acks after commit."""
    engine: AsyncEngine | None = sessions.kw.get("bind")
    on_postgres = engine is not None and engine.dialect.name == "postgresql"

    async def flush(items: list[tuple[str, dict[str, Any]]]) -> None:
        stored_at = utcnow()
        runs = [row for kind, row in items if kind == "run"]
        for row in runs:
            row["stored_at"] = stored_at
        heartbeats = [row for kind, row in items if kind == "heartbeat"]
        if on_postgres and engine is not None:
            inserted = await pg.write_batch(engine, runs, heartbeats)
        else:
            async with sessions() as session, session.begin():
                inserted = set(await write_runs(session, runs))
                await write_heartbeats(session, heartbeats)
        count_stored([row for row in runs if row["run_id"] in inserted], stored_at)

    batcher = Batcher(flush, max_items=settings.results_batch_size, max_wait_ms=settings.results_batch_ms)
    handlers: dict[type, Any] = {
        CheckCompleted: partial(handle_check_completed, batcher=batcher),
        CheckCompletedBatch: partial(handle_check_completed_batch, batcher=batcher),
        RunMissed: partial(handle_run_missed, batcher=batcher),
        RunMissedBatch: partial(handle_run_missed_batch, batcher=batcher),
        RunnerHeartbeat: partial(handle_runner_heartbeat, batcher=batcher),
    }
    # The bus hands the results over in batches (one call, one ack per batch); the per-message handlers
    # stay for any type the batch does not take.
    batch = Batch(
        partial(store_batch, batcher=batcher),
        BATCHED,
        max_items=settings.results_batch_size,
        max_wait_ms=settings.results_batch_ms,
        weight=items_in,
        inflight_items=settings.results_inflight_items,
    )
    return Service(
        "results",
        # Three batches' worth unacked: two in flight (one commits while the next is handed over) and
        # the following one already here when the first is acked. That counts messages; a runner's
        # batch of a hundred results weighs a hundred, and the bus narrows the prefetch to hold about
        # ``results_inflight_items`` results.
        routes=[
            Route(
                RESULTS_STORE,
                handlers,
                prefetch=max(settings.prefetch, 3 * settings.results_batch_size),
                batch=batch,
            )
        ],
        lifecycles=[batcher, Retention(sessions, settings.retention_days)],
    )
