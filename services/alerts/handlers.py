"""Handlers of ``alerts.evaluate``: each result or miss is one policy-engine step for its check.

Steps are batched (:class:`services.common.db.batches.Batcher`): a handler returns, and the bus acks its
message, only once the transaction holding its step has committed; while the database is away the batch
waits and is retried, and a result whose step cannot be stored fails alone and is redelivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from contracts.v1 import CheckCompleted, CheckCompletedBatch, RunMissed
from services.alerts.evaluator import Evaluator
from services.common.bus import Delivery, Outcome
from services.common.db.batches import Batcher, Item, submit_messages


async def handle_check_completed(message: CheckCompleted, delivery: Delivery, *, batcher: Batcher) -> None:
    """Fold a run's result into its check's incident state; acked once the step is committed."""
    await batcher.submit("result", message)


async def handle_check_completed_batch(
    message: CheckCompletedBatch, delivery: Delivery, *, batcher: Batcher
) -> None:
    """Fold each result of a runner's batch, in order, as if it came alone; acked once all are committed."""
    await asyncio.gather(*(batcher.submit("result", item) for item in message.items))


async def handle_run_missed(message: RunMissed, delivery: Delivery, *, batcher: Batcher) -> None:
    """Record a miss as no data for its slot and region (a broker outage never opens an incident)."""
    await batcher.submit("result", message)


#: The message types :func:`observe_batch` takes (the alerts route's batch).
BATCHED: frozenset[type] = frozenset({CheckCompleted, CheckCompletedBatch, RunMissed})


def items_in(message: Any) -> int:
    """How many results a message of the route carries (what its prefetch counts)."""
    return len(message.items) if isinstance(message, CheckCompletedBatch) else 1


def _steps_of(message: Any) -> list[Item]:
    if isinstance(message, CheckCompletedBatch):
        return [("result", item) for item in message.items]
    if isinstance(message, CheckCompleted | RunMissed):
        return [("result", message)]
    raise TypeError(f"alerts does not batch {type(message).__name__}")


async def observe_batch(messages: Sequence[tuple[Any, Delivery]], *, batcher: Batcher) -> list[Outcome]:
    """A bus batch of results and misses: one engine step each (a runner's batch one per item), in
    arrival order, committed together; a step that cannot be stored fails its message alone (the
    batcher splits the batch), and a runner's batch fails if any of its items did."""
    return await submit_messages(batcher, (message for message, _delivery in messages), _steps_of)


def evaluate_batch(evaluator: Evaluator) -> Any:
    """The batcher's flush: one transaction for the whole batch, steps in arrival order."""

    async def flush(items: list[tuple[str, Any]]) -> None:
        await evaluator.observe_many([message for _, message in items])

    return flush
