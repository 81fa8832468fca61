"""Admission: shed a region's scheduled runs before they are published once its runners are too far behind.

Past what the runners can take, every run offered is carried through the broker, queued, delivered and
then thrown away as expired (or run seconds late): at twice the sustainable rate nearly all the CPU went
to runs that were then dropped, and real runs fell to a few percent of what the machine can do. So the
router keeps, per region, an estimate of how long a run it publishes now would wait in the region's queue
before a runner takes it, and while that exceeds ``max_wait`` it records the run as missed (``overloaded``)
instead of publishing it. The runs that are published then start within about ``max_wait`` (plus the
runners' prefetch), the queue stays near ``rate × max_wait`` instead of growing until runs expire, and as
soon as the runners catch up the estimate falls and every run is admitted again.

The estimate: the region's queue depth is sampled every ``every`` seconds; between two samples the runs
taken off the queue are the runs this router admitted minus the growth of the queue, which gives the
runners' take rate. Between samples the depth is predicted from the last sample, this router's admissions
since and the take rate, so the decision follows each run rather than jumping every sample. While runs
wait in the queue, every runner's prefetch window is full too (the broker hands a consumer a run as soon
as it has room): those runs, the capacity the runners announce in their heartbeats, wait ahead of a new
run as well, so they count in its wait.

Deliberately not shed:

* A region whose runners took nothing for ``idle_after`` seconds (none connected, or all stalled): that is
  not overload but an outage, and its runs keep the existing outcome (expired or ``no_runner``, with the
  liveness rules), so a restarted runner still runs them while they are fresh.
* Queues of at most ``floor`` runs: a burst of slots in one second is not a backlog.
* Manual and confirmation runs (see :func:`services.router.handlers`): rare, and someone waits for them.
* A region whose queue this broker does not hold (one behind its own broker, fed by federation): the
  probe fails once and the region is left unprobed for ``blind_for`` seconds; its runs are bounded by
  their expiry as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from contracts.topology import runner_queue
from services.common.tasks import cancel_and_wait

log = logging.getLogger(__name__)

#: How much of each new take-rate sample goes into the estimate (the rest is the previous estimate).
RATE_WEIGHT: Final = 0.5
#: A region no slot was routed to for this long is no longer probed.
IDLE_AFTER: Final = 60.0


class DepthProbe(Protocol):
    """How many runs wait in a queue (ready, not yet delivered to a runner)."""

    async def queue_depth(self, queue: str) -> int:
        """The number of ready messages in ``queue``; raises if the queue cannot be inspected."""
        ...

    async def stop(self) -> None:
        """Release what the probe holds (a connection)."""
        ...


@dataclass
class RegionLoad:
    """What the router knows of one region's queue."""

    sampled_depth: int = 0
    sampled_at: float | None = None
    published: int = 0
    #: Runs per second the region's runners took off the queue, or ``None`` before two samples.
    rate: float | None = None
    #: When the runners last took anything (or the queue was empty), on the admission's clock.
    took_at: float | None = None
    blind_until: float = 0.0
    used_at: float = 0.0
    #: Runner id → (capacity it announced, when): how many runs the region's runners hold at most.
    runners: dict[str, tuple[int, float]] = field(default_factory=dict)


@dataclass
class Admission:
    """Per-region admission for scheduled runs (see the module docstring)."""

    probe: DepthProbe | None
    max_wait: float = 1.0
    floor: int = 200
    every: float = 0.2
    blind_for: float = 600.0
    runner_stale_after: float = 30.0
    #: Runners that took nothing for this long are away (an outage), not slow: nothing is shed for them.
    #: Longer than one window, so a runner's loop busy for a moment does not open the gate to everything.
    idle_after: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _regions: dict[str, RegionLoad] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether anything is ever shed (a probe and a positive bound)."""
        return self.probe is not None and self.max_wait > 0

    def _load(self, region: str) -> RegionLoad:
        load = self._regions.get(region)
        if load is None:
            load = self._regions[region] = RegionLoad()
        load.used_at = self.clock()
        return load

    def backlog(self, region: str) -> tuple[float, float] | None:
        """The predicted depth of ``region``'s queue and the runners' take rate, or ``None`` if unknown."""
        load = self._regions.get(region)
        if load is None or load.sampled_at is None or load.rate is None:
            return None
        elapsed = max(self.clock() - load.sampled_at, 0.0)
        depth = max(load.sampled_depth + load.published - load.rate * elapsed, 0.0)
        return depth, load.rate

    def held(self, region: str) -> int:
        """How many runs the region's live runners hold at most (their announced capacities)."""
        load = self._regions.get(region)
        if load is None:
            return 0
        now = self.clock()
        return sum(
            capacity for capacity, seen in load.runners.values() if now - seen <= self.runner_stale_after
        )

    def runner_seen(self, region: str, runner_id: str, capacity: int) -> None:
        """A heartbeat: ``runner_id`` serves ``region`` and holds up to ``capacity`` runs."""
        load = self._regions.get(region) or self._load(region)
        now = self.clock()
        load.runners = {
            rid: entry for rid, entry in load.runners.items() if now - entry[1] <= self.runner_stale_after
        }
        load.runners[runner_id] = (capacity, now)

    def verdict(self, region: str) -> str | None:
        """``None`` to publish a run for ``region`` now, else why it is shed (the missed run's detail)."""
        if not self.enabled:
            return None
        load = self._load(region)
        if load.took_at is not None and self.clock() - load.took_at > self.idle_after:
            return None
        known = self.backlog(region)
        if known is None:
            return None
        depth, rate = known
        if depth <= self.floor or rate <= 0:
            return None
        ahead = depth + self.held(region)
        if ahead <= rate * self.max_wait:
            return None
        return (
            f"shed by the router: {depth:.0f} runs queued for region {region} and {ahead - depth:.0f} held"
            f" by its runners, about {ahead / rate:.1f} s of work at {rate:.0f} runs/s"
            f" (bound {self.max_wait:g} s)"
        )

    def published(self, region: str, count: int = 1) -> None:
        """Count runs admitted for ``region`` since the last sample (counted when admitted, not when
        confirmed: under load a confirm takes a while, and runs admitted meanwhile are on their way)."""
        self._load(region).published += count

    async def sample(self) -> None:
        """Probe every region routed to lately and update its depth and take rate."""
        probe = self.probe
        if probe is None:
            return
        now = self.clock()
        for region, load in list(self._regions.items()):
            if now - load.used_at > IDLE_AFTER:
                del self._regions[region]
                continue
            if now < load.blind_until:
                continue
            try:
                depth = await probe.queue_depth(runner_queue(region).name)
            except Exception as exc:
                load.blind_until = self.clock() + self.blind_for
                load.sampled_at = load.rate = None
                log.info(
                    "not shedding for region=%s: its runner queue is not on this broker (%s); next look in"
                    " %.0f s",
                    region,
                    str(exc)[:200],
                    self.blind_for,
                )
                continue
            self.observe(region, depth)

    def observe(self, region: str, depth: int) -> None:
        """Take a depth sample of ``region``'s queue (what :meth:`sample` does for each region)."""
        load = self._regions.get(region) or self._load(region)
        now = self.clock()
        if load.sampled_at is not None and now > load.sampled_at:
            taken = max(load.published + load.sampled_depth - depth, 0)
            instant = taken / (now - load.sampled_at)
            if taken > 0 or depth == 0:
                load.took_at = now
            load.rate = (
                instant if load.rate is None else RATE_WEIGHT * instant + (1 - RATE_WEIGHT) * load.rate
            )
        load.sampled_depth, load.sampled_at, load.published = depth, now, 0

    # -- lifecycle (a router service's background work) -------------------------------------------------

    async def start(self) -> None:
        """Sample every ``every`` seconds in the background (nothing to do without a probe)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="router-admission")

    async def stop(self) -> None:
        """Stop sampling and close the probe."""
        await cancel_and_wait(self._task)
        self._task = None
        if self.probe is not None:
            await self.probe.stop()

    async def _run(self) -> None:
        task = asyncio.current_task()
        while True:
            try:
                await self.sample()
            except Exception:
                # Without fresh samples the estimate stops shedding (the rate check needs new windows);
                # keep trying rather than leave the router blind for good.
                log.exception("admission sample failed")
            if task is not None and task.cancelling():
                # The broker client on the probe's path can swallow our cancel (seen after a broker
                # restart): stop anyway, or stop() waits forever and the router never exits on SIGTERM.
                raise asyncio.CancelledError
            await asyncio.sleep(self.every)
