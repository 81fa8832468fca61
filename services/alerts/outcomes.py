"""Results as the policy engine sees them: CheckCompleted / RunMissed → one region's outcome in a slot."""

from __future__ import annotations

from contracts.v1 import (
    AlertPolicy,
    AssertionFailure,
    CheckCompleted,
    ErrorFailure,
    FailureDetail,
    MissedFailure,
    RunMissed,
)
from services.alerts.policy import Observation, RegionOutcome


def failure_detail(message: CheckCompleted) -> FailureDetail | None:
    """The first failing assertion (target and observed value), or the error, of a failed run; for a
    multi-step check, named by the step that failed."""
    step = message.failed_step or None
    for outcome in message.assertions:
        if not outcome.passed:
            return AssertionFailure(
                source=outcome.source,
                property=outcome.property,
                comparison=outcome.comparison,
                target=outcome.target,
                observed=outcome.observed,
                message=outcome.message,
                step=step,
            )
    if message.error is not None:
        return ErrorFailure(cls=message.error.cls, message=message.error.message[:300], step=step)
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
        outcome = RegionOutcome(status="missed", detail=MissedFailure(reason=message.reason))
    elif message.status == "passed":
        outcome = RegionOutcome(status="passed", degraded=is_degraded(message, policy))
    else:
        outcome = RegionOutcome(status="failed", detail=failure_detail(message))
    return Observation(slot=message.slot, region=message.region, trigger=message.trigger, outcome=outcome)
