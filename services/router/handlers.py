"""Router handlers: fan out due slots (alone or batched), record runs that never ran, track runners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from contracts.v1 import (
    CheckDue,
    CheckDueBatch,
    MissedReason,
    RunCheck,
    RunMissed,
    RunMissedBatch,
    RunnerHeartbeat,
    utcnow,
)
from services.common.bus import Delivery, Publisher
from services.common.errors import Unroutable
from services.common.fencing import EpochFence
from services.common.logs import bind as bind_log_subject
from services.common.secretbox import Sealer
from services.router.admission import Admission
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
    admission: Admission | None = None


async def handle_check_due(message: CheckDue, delivery: Delivery, *, deps: RouterDeps) -> None:
    """Publish one ``RunCheck`` per region; a region with no runner queue becomes a missed run at once."""
    await _route_all([message], deps)


async def handle_check_due_batch(message: CheckDueBatch, delivery: Delivery, *, deps: RouterDeps) -> None:
    """Route every slot of the batch as if it had come alone, all publishes in flight together.

    Returning acks the batch, so it returns only once every run (or missed record) is confirmed; if any
    publish failed it raises and the whole batch comes again, which is harmless: run ids are
    deterministic, so a run published twice is run and stored once per id.
    """
    await _route_all(message.items, deps)


async def _route_all(slots: list[CheckDue], deps: RouterDeps) -> None:
    """Route ``slots``; the runs given up at once (shed, or expired before routing) go home as one
    ``RunMissedBatch``, published together with the runs."""
    given_up: list[RunMissed] = []
    sends = [_route(item, deps, given_up) for item in slots]
    if given_up:
        sends.append(_send_missed(given_up, deps))
    await _settled(sends)


def _route(message: CheckDue, deps: RouterDeps, given_up: list[RunMissed]) -> Coroutine[Any, Any, None]:
    """Decide each run of the slot now (publish, or give it up into ``given_up``); the publishes to await."""
    bind_log_subject(message)
    if not deps.fence.admit_due(message):
        log.warning(
            "dropping slot from a deposed scheduler check_id=%s slot=%s epoch=%d",
            message.check_id,
            message.slot.isoformat(),
            message.epoch,
        )
        return _publishing(message, [])
    ttl = run_ttl(message.spec.interval, minimum=deps.ttl_min, maximum=deps.ttl_max)
    remaining = (message.slot - utcnow()).total_seconds() + ttl
    runs = fan_out(message, ttl=ttl, box=deps.box)
    if remaining <= 0:
        given_up.extend(missed(run, _reason(deps, run.region), "expired before routing") for run in runs)
        return _publishing(message, [])
    sends = []
    for run in runs:
        shed = _shed(run, deps)
        if shed is None:
            if deps.admission is not None:
                deps.admission.published(run.region)
            sends.append(_send_run(run, remaining, deps))
        else:
            given_up.append(missed(run, "overloaded", shed))
    return _publishing(message, sends)


async def _publishing(message: CheckDue, sends: list[Coroutine[Any, Any, None]]) -> None:
    bind_log_subject(message)  # a batch's items are each published in a task of their own
    await _settled(sends)


def _shed(run: RunCheck, deps: RouterDeps) -> str | None:
    """Why ``run`` is shed rather than published, or ``None``. Only scheduled runs of a region with a live
    runner are ever shed: a manual or confirmation run has someone waiting for it, and a region without
    a live runner is an outage, recorded as such when its runs expire."""
    admission = deps.admission
    if admission is None or run.trigger != "scheduled" or not deps.liveness.is_live(run.region):
        return None
    return admission.verdict(run.region)


async def _send_run(run: RunCheck, remaining: float, deps: RouterDeps) -> None:
    try:
        await deps.bus.publish(run, expiration=remaining, mandatory=True)
    except Unroutable:
        await deps.bus.publish(missed(run, "no_runner", f"no runner queue for region {run.region}"))


async def _send_missed(records: list[RunMissed], deps: RouterDeps) -> None:
    """Publish ``records`` as one ``RunMissedBatch``. While no consumer is bound to the batch's key yet (a
    results service older than the router), each goes alone instead, an ``overloaded`` one as ``expired``
    with the cause in its detail (older consumers do not know the reason): nothing is lost mid-upgrade."""
    try:
        await deps.bus.publish(RunMissedBatch(items=records), mandatory=True)
    except Unroutable:
        log.warning(
            "no consumer for run.missed.batch yet (results older than the router?): %d sent alone",
            len(records),
        )
        await _settled([deps.bus.publish(_older(record)) for record in records])


def _older(record: RunMissed) -> RunMissed:
    """``record`` as a pre-``overloaded`` consumer can read it."""
    if record.reason != "overloaded":
        return record
    return record.model_copy(update={"reason": "expired", "detail": f"overloaded: {record.detail}"})


async def _settled(sends: list[Coroutine[Any, Any, None]]) -> None:
    """Await every publish together (their confirms are pipelined); then raise the first failure, if any.

    Waiting for all before raising keeps a failed batch from being nacked while its other publishes are
    still in flight.
    """
    if len(sends) == 1:
        await sends[0]
        return
    results = await asyncio.gather(*sends, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def handle_dead_run(message: RunCheck, delivery: Delivery, *, deps: RouterDeps) -> None:
    """A run left its region's queue unrun: record it as missed, saying whether any runner was alive."""
    reason = delivery.death_reason or "expired"
    detail = "expired in queue" if reason == "expired" else f"dead-lettered ({reason})"
    await deps.bus.publish(missed(message, _reason(deps, message.region), detail))


async def handle_heartbeat(message: RunnerHeartbeat, delivery: Delivery, *, deps: RouterDeps) -> None:
    """Remember that ``message.region`` has a live runner."""
    deps.liveness.saw(message.region, message.interval_s)
    if deps.admission is not None:
        deps.admission.runner_seen(message.region, message.runner_id, message.capacity)


def _reason(deps: RouterDeps, region: str) -> MissedReason:
    return "expired" if deps.liveness.is_live(region) else "no_runner"
