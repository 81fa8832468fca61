"""Handlers of ``alerts.evaluate``: each result or miss is one policy-engine step for its check."""

from __future__ import annotations

from contracts.v1 import CheckCompleted, RunMissed
from services.alerts.evaluator import Evaluator
from services.common.bus import Delivery
from services.common.db.retry import retry_unreachable


async def handle_check_completed(
    message: CheckCompleted, delivery: Delivery, *, evaluator: Evaluator
) -> None:
    """Fold a run's result into its check's incident state; acked once the step is committed."""
    await retry_unreachable(lambda: evaluator.observe(message), what="alerts step")


async def handle_run_missed(message: RunMissed, delivery: Delivery, *, evaluator: Evaluator) -> None:
    """Record a miss as no data for its slot and region (a broker outage never opens an incident)."""
    await retry_unreachable(lambda: evaluator.observe(message), what="alerts step")
