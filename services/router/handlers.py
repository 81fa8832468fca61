"""Router handlers: fan out due slots, turn dead runs into missed-run records, track runner liveness."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from contracts.v1 import CheckDue, RunCheck, RunnerHeartbeat, utcnow
from services.common.bus import Delivery, Publisher
from services.common.errors import Unroutable
from services.common.fencing import EpochFence
from services.common.secretbox import Sealer
from services.router.fanout import fan_out, missed, run_ttl
from services.router.liveness import RunnerLiveness

log = logging.getLogger(__name__)


@dataclass
class RouterDeps:
    """What the router's handlers need."""

    bus: Publisher
    liveness: RunnerLiveness
    fence: EpochFence
    ttl_min: float
    ttl_max: float
    box: Sealer | None = None


async def handle_check_due(message: CheckDue, delivery: Delivery, *, deps: RouterDeps) -> None:
    """Publish one ``RunCheck`` per region; a region with no runner queue becomes a missed run at once."""
    if not deps.fence.admit_due(message):
        log.warning(
            "dropping slot from a deposed scheduler check_id=%s slot=%s epoch=%d",
            message.check_id,
            message.slot.isoformat(),
            message.epoch,
        )
        return
    ttl = run_ttl(message.spec.interval, minimum=deps.ttl_min, maximum=deps.ttl_max)
    remaining = (message.slot - utcnow()).total_seconds() + ttl
    for run in fan_out(message, ttl=ttl, box=deps.box):
        if remaining <= 0:
            await deps.bus.publish(missed(run, _reason(deps, run.region), "expired before routing"))
            continue
        try:
            await deps.bus.publish(run, expiration=remaining, mandatory=True)
        except Unroutable:
            await deps.bus.publish(missed(run, "no_runner", f"no runner queue for region {run.region}"))


async def handle_dead_run(message: RunCheck, delivery: Delivery, *, deps: RouterDeps) -> None:
    """A run left its region's queue unrun: record it as missed, saying whether any runner was alive."""
    reason = delivery.death_reason or "expired"
    detail = "expired in queue" if reason == "expired" else f"dead-lettered ({reason})"
    await deps.bus.publish(missed(message, _reason(deps, message.region), detail))


async def handle_heartbeat(message: RunnerHeartbeat, delivery: Delivery, *, deps: RouterDeps) -> None:
    """Remember that ``message.region`` has a live runner."""
    deps.liveness.saw(message.region, message.interval_s)


def _reason(deps: RouterDeps, region: str) -> str:
    return "expired" if deps.liveness.is_live(region) else "no_runner"
