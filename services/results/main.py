"""Results composition root: settings → batcher → routes."""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from contracts.topology import RESULTS_STORE
from contracts.v1 import CheckCompleted, RunMissed, RunnerHeartbeat, utcnow
from services.common.bus import Bus, Route
from services.common.db.sessions import Sessions
from services.common.metrics import RUN_LAG, RUNS_STORED
from services.common.service import Service
from services.common.settings import Settings
from services.results.batcher import Batcher
from services.results.handlers import handle_check_completed, handle_run_missed, handle_runner_heartbeat
from services.results.retention import Retention
from services.results.store import write_heartbeats, write_runs


def count_stored(rows: list[dict[str, Any]], stored_at: datetime) -> None:
    """Count newly stored runs by region and status, and their slot→stored lag (scheduled runs only)."""
    for row in rows:
        RUNS_STORED.labels(row["region"], row["status"]).inc()
        if row["trigger"] == "scheduled":
            RUN_LAG.labels(row["region"]).observe(max((stored_at - row["slot"]).total_seconds(), 0.0))


def build(settings: Settings, bus: Bus, sessions: Sessions) -> Service:
    """The results writer: one transaction per batch, acks after commit."""

    async def flush(items: list[tuple[str, dict[str, Any]]]) -> None:
        stored_at = utcnow()
        runs = [{**row, "stored_at": stored_at} for kind, row in items if kind == "run"]
        async with sessions() as session, session.begin():
            inserted = set(await write_runs(session, runs))
            await write_heartbeats(session, [row for kind, row in items if kind == "heartbeat"])
        count_stored([row for row in runs if row["run_id"] in inserted], stored_at)

    batcher = Batcher(flush, max_items=settings.results_batch_size, max_wait_ms=settings.results_batch_ms)
    handlers: dict[type, Any] = {
        CheckCompleted: partial(handle_check_completed, batcher=batcher),
        RunMissed: partial(handle_run_missed, batcher=batcher),
        RunnerHeartbeat: partial(handle_runner_heartbeat, batcher=batcher),
    }
    return Service(
        "results",
        routes=[Route(RESULTS_STORE, handlers, prefetch=max(settings.prefetch, settings.results_batch_size))],
        lifecycles=[batcher, Retention(sessions, settings.retention_days)],
    )
