"""The runner's one handler: run a check (or report it missed), then publish what happened."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from prometheus_client import Histogram

from contracts.v1 import CheckCompleted, CheckSpec, RunCheck, RunMissed
from contracts.v1.base import utcnow
from contracts.v1.runs import Timings
from services.common.bus import Delivery, Publisher
from services.common.metrics import RUN_PHASE, RUNS_MADE
from services.runner.fit import fit_sized
from services.runner.http_check import CheckResult

log = logging.getLogger(__name__)


class Checker(Protocol):
    """What the handler needs from :class:`services.runner.http_check.HttpChecker`."""

    async def run(self, spec: CheckSpec, secrets: Mapping[str, str] | None = None) -> CheckResult:
        """Run one check (with the secrets its requests use); never raises for anything the endpoint does."""
        ...


@functools.cache
def _phase_histograms(region: str) -> tuple[tuple[str, Histogram], ...]:
    """``RUN_PHASE``'s series for ``region``, by ``Timings`` field: looked up once, not per run."""
    return tuple((name, RUN_PHASE.labels(region, name.removesuffix("_ms"))) for name in Timings.model_fields)


class ResultSink(Protocol):
    """Where finished runs go (:class:`services.runner.outbox.Outbox`): ``send`` returns once confirmed."""

    async def send(self, result: CheckCompleted, size: int) -> None:
        """Publish ``result`` (``size`` = its encoded bytes); return once the broker confirmed it."""
        ...


class Load:
    """How many runs this runner is making right now (reported in its heartbeat)."""

    __slots__ = ("in_flight",)

    def __init__(self) -> None:
        self.in_flight = 0


async def handle_run_check(
    message: RunCheck,
    delivery: Delivery,
    *,
    checker: Checker,
    publisher: Publisher,
    outbox: ResultSink,
    runner_id: str,
    load: Load,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Run ``message``'s check and hand its ``CheckCompleted`` to the outbox (batched with others); a run
    received after ``expires_at`` is not made and becomes ``RunMissed(expired)``. Returning acks the
    message, so the publish (confirmed) happens first; a redelivered run may run again — results
    deduplicate on ``run_id``."""
    now = clock()
    if now >= message.expires_at:
        late = (now - message.expires_at).total_seconds()
        await publisher.publish(
            RunMissed(
                run_id=message.run_id,
                check_id=message.check_id,
                slot=message.slot,
                region=message.region,
                trigger=message.trigger,
                reason="expired",
                detail=f"received by runner {runner_id} {late:.3f} s after it expired",
            )
        )
        RUNS_MADE.labels(message.region, "expired").inc()
        log.info(
            "run expired run_id=%s check_id=%s region=%s slot=%s late_s=%.3f",
            message.run_id,
            message.check_id,
            message.region,
            message.slot.isoformat(),
            late,
        )
        return
    load.in_flight += 1
    try:
        result = await checker.run(message.spec, message.secrets)
    finally:
        load.in_flight -= 1
    completed, size = fit_sized(
        CheckCompleted(
            run_id=message.run_id,
            check_id=message.check_id,
            slot=message.slot,
            region=message.region,
            trigger=message.trigger,
            status=result.status,
            started_at=result.started_at,
            completed_at=result.completed_at,
            response=result.response,
            timings=result.timings,
            error=result.error,
            assertions=result.assertions,
            request=result.request,
            runner_id=runner_id,
            degraded=result.degraded,
            steps=result.steps,
            failed_step=result.failed_step,
            certificate=result.certificate,
        )
    )
    await outbox.send(completed, size)
    RUNS_MADE.labels(message.region, result.status).inc()
    for name, histogram in _phase_histograms(message.region):
        ms = getattr(result.timings, name)
        if ms is not None:
            histogram.observe(ms / 1000)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "run done run_id=%s check_id=%s region=%s slot=%s status=%s total_ms=%s redelivered=%s",
            message.run_id,
            message.check_id,
            message.region,
            message.slot.isoformat(),
            result.status,
            result.timings.total_ms,
            delivery.redelivered,
        )
