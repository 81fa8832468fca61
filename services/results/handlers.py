"""Results handlers: each waits for its row's batch to commit, so the bus acks after the write."""

from __future__ import annotations

import asyncio

from contracts.v1 import CheckCompleted, RunMissed, RunMissedBatch, RunnerHeartbeat
from services.common.bus import Delivery
from services.common.db.batches import Batcher
from services.results.rows import completed_row, missed_row


async def handle_check_completed(message: CheckCompleted, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store a finished run (once, whatever the redeliveries)."""
    await batcher.submit("run", completed_row(message))


async def handle_run_missed(message: RunMissed, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store a run that never started."""
    await batcher.submit("run", missed_row(message))


async def handle_run_missed_batch(message: RunMissedBatch, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store many runs that never started (shed by the router); acked once every row is committed."""
    await asyncio.gather(*(batcher.submit("run", missed_row(item)) for item in message.items))


async def handle_runner_heartbeat(message: RunnerHeartbeat, delivery: Delivery, *, batcher: Batcher) -> None:
    """Record that a runner is alive."""
    await batcher.submit(
        "heartbeat",
        {
            "runner_id": message.runner_id,
            "region": message.region,
            "version": message.runner_version,
            "capacity": message.capacity,
            "in_flight": message.in_flight,
            "started_at": message.started_at,
            "last_seen": message.created_at,
            "interval_s": message.interval_s,
        },
    )
