"""Results composition root: settings → batcher → routes."""

from __future__ import annotations

from functools import partial
from typing import Any

from contracts.topology import RESULTS_STORE
from contracts.v1 import CheckCompleted, RunMissed, RunnerHeartbeat, utcnow
from services.common.bus import Bus, Route
from services.common.service import Service
from services.common.settings import Settings
from services.results.batcher import Batcher
from services.results.handlers import handle_check_completed, handle_run_missed, handle_runner_heartbeat
from services.results.retention import Retention
from services.results.store import write_heartbeats, write_runs


def build(settings: Settings, bus: Bus, sessions: Any) -> Service:
    """The results writer: one transaction per batch, acks after commit."""

    async def flush(items: list[tuple[str, dict[str, Any]]]) -> None:
        stored_at = utcnow()
        async with sessions() as session, session.begin():
            await write_runs(
                session, [{**row, "stored_at": stored_at} for kind, row in items if kind == "run"]
            )
            await write_heartbeats(session, [row for kind, row in items if kind == "heartbeat"])

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
