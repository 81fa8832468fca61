"""Results handlers: each waits for its row's batch to commit, so the bus acks after the write."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from contracts.v1 import CheckCompleted, CheckCompletedBatch, RunMissed, RunMissedBatch, RunnerHeartbeat
from services.common.bus import Delivery, Outcome
from services.common.db.batches import Batcher, Item, submit_messages
from services.results.rows import completed_row, missed_row


async def handle_check_completed(message: CheckCompleted, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store a finished run (once, whatever the redeliveries)."""
    await batcher.submit("run", completed_row(message))


async def handle_check_completed_batch(
    message: CheckCompletedBatch, delivery: Delivery, *, batcher: Batcher
) -> None:
    """Store every run of a runner's batch, each as if it came alone; acked once every row is committed."""
    await asyncio.gather(*(batcher.submit("run", completed_row(item)) for item in message.items))


async def handle_run_missed(message: RunMissed, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store a run that never started."""
    await batcher.submit("run", missed_row(message))


async def handle_run_missed_batch(message: RunMissedBatch, delivery: Delivery, *, batcher: Batcher) -> None:
    """Store many runs that never started (shed by the router); acked once every row is committed."""
    await asyncio.gather(*(batcher.submit("run", missed_row(item)) for item in message.items))


async def handle_runner_heartbeat(message: RunnerHeartbeat, delivery: Delivery, *, batcher: Batcher) -> None:
    """Record that a runner is alive."""
    await batcher.submit("heartbeat", heartbeat_row(message))


def heartbeat_row(message: RunnerHeartbeat) -> dict[str, Any]:
    """The ``runners`` row a heartbeat upserts."""
    return {
        "runner_id": message.runner_id,
        "region": message.region,
        "version": message.runner_version,
        "capacity": message.capacity,
        "in_flight": message.in_flight,
        "started_at": message.started_at,
        "last_seen": message.created_at,
        "interval_s": message.interval_s,
    }


#: The message types :func:`store_batch` takes (the results route's batch).
BATCHED: frozenset[type] = frozenset(
    {CheckCompleted, CheckCompletedBatch, RunMissed, RunMissedBatch, RunnerHeartbeat}
)


def items_in(message: Any) -> int:
    """How many results a message of the route carries (what its prefetch counts)."""
    if isinstance(message, CheckCompletedBatch | RunMissedBatch):
        return len(message.items)
    return 1


def _items_of(message: Any) -> list[Item]:
    if isinstance(message, CheckCompleted):
        return [("run", completed_row(message))]
    if isinstance(message, CheckCompletedBatch):
        return [("run", completed_row(item)) for item in message.items]
    if isinstance(message, RunMissed):
        return [("run", missed_row(message))]
    if isinstance(message, RunMissedBatch):
        return [("run", missed_row(item)) for item in message.items]
    if isinstance(message, RunnerHeartbeat):
        return [("heartbeat", heartbeat_row(message))]
    raise TypeError(f"results does not batch {type(message).__name__}")


async def store_batch(messages: Sequence[tuple[Any, Delivery]], *, batcher: Batcher) -> list[Outcome]:
    """A bus batch of results: its rows go to the batcher at once (no waiting for company) and each
    message's outcome is its rows' — committed, or the error of the row that failed alone (a message
    whose rows cannot even be built fails alone too)."""
    return await submit_messages(batcher, (message for message, _delivery in messages), _items_of)
