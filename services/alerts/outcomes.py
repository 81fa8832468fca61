"""Results as the policy engine sees them: CheckCompleted / RunMissed → one region's outcome in a slot."""

from __future__ import annotations

from typing import Any

from contracts.v1 import AlertPolicy, CheckCompleted, RunMissed
from services.alerts.policy import Observation, RegionOutcome


def failure_detail(message: CheckCompleted) -> dict[str, Any] | None:
    """The first failing assertion (target and observed value), or the error, of a failed run; for a
    multi-step check, named by the step that failed."""
    detail = _first_failure(message)
    if detail is not None and message.failed_step:
        detail["step"] = message.failed_step
    return detail


def _first_failure(message: CheckCompleted) -> dict[str, Any] | None:
    for outcome in message.assertions:
        if not outcome.passed:
            return {
                "kind": "assertion",
                "source": outcome.source,
                "property": outcome.property,
                "comparison": outcome.comparison,
                "target": outcome.target,
                "observed": outcome.observed,
                "message": outcome.message,
            }
    if message.error is not None:
        return {"kind": "error", "class": message.error.cls, "message": message.error.message[:300]}
    return None


def is_degraded(message: CheckCompleted, policy: AlertPolicy) -> bool:
    """A passing run slower than the soft threshold (ms), or one the runner marked degraded."""
    if message.status != "passed":
        return False
    total = message.timings.total_ms
    soft = policy.degraded_response_time
    return message.degraded or (soft is not None and total is not None and total > soft)


def observation(message: CheckCompleted | RunMissed, policy: AlertPolicy) -> Observation:
    """The engine's view of ``message``: a miss is no data, ``error`` counts as failed."""
    if isinstance(message, RunMissed):
        outcome = RegionOutcome(status="missed", detail={"kind": "missed", "reason": message.reason})
    elif message.status == "passed":
        outcome = RegionOutcome(status="passed", degraded=is_degraded(message, policy))
    else:
        outcome = RegionOutcome(status="failed", detail=failure_detail(message))
    return Observation(slot=message.slot, region=message.region, trigger=message.trigger, outcome=outcome)
