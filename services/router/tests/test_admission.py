"""Admission: when a region's scheduled runs are shed, from depth samples and the router's own publishes."""

from __future__ import annotations

import asyncio
import contextlib

from services.router.admission import Admission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Depths:
    """A probe answering from a table (the real one asks RabbitMQ; see test_shedding)."""

    def __init__(self) -> None:
        self.depth: dict[str, int] = {}
        self.stopped = False

    async def queue_depth(self, queue: str) -> int:
        return self.depth[queue]

    async def stop(self) -> None:
        self.stopped = True


def admission(max_wait: float = 1.0, floor: int = 50) -> tuple[Admission, Clock]:
    clock = Clock()
    return Admission(Depths(), max_wait=max_wait, floor=floor, clock=clock), clock


class Region:
    """A region's queue and runners that take ``capacity`` runs/s, sampled like the router does."""

    def __init__(self, gate: Admission, clock: Clock, capacity: float) -> None:
        self.gate, self.clock, self.capacity = gate, clock, capacity
        self.depth = 0.0
        self.max_depth = 0.0
        self.why: str | None = None
        gate.observe("local", 0)

    def run(self, offered: float, seconds: float, step: float = 0.01, every: float = 0.2) -> int:
        """Offer ``offered`` slots/s for ``seconds``; returns how many were admitted."""
        admitted, owed, since_sample = 0, 0.0, 0.0
        for _ in range(round(seconds / step)):
            owed += offered * step
            while owed >= 1:
                owed -= 1
                why = self.gate.verdict("local")
                if why is None:
                    self.gate.published("local")
                    self.depth += 1
                    admitted += 1
                else:
                    self.why = why
            self.depth = max(self.depth - self.capacity * step, 0.0)
            self.max_depth = max(self.max_depth, self.depth)
            self.clock.now += step
            since_sample += step
            if since_sample >= every - 1e-9:
                since_sample = 0.0
                self.gate.observe("local", round(self.depth))
        return admitted


def test_nothing_is_shed_before_the_queue_was_seen_twice() -> None:
    gate, _clock = admission()
    assert gate.verdict("local") is None
    gate.observe("local", 10_000)
    assert gate.verdict("local") is None  # one sample: no take rate yet


def test_a_region_whose_runners_keep_up_is_never_shed() -> None:
    gate, clock = admission()
    assert Region(gate, clock, capacity=500).run(offered=400, seconds=5) == 2000


def test_a_region_behind_by_more_than_the_bound_sheds_the_excess_and_recovers() -> None:
    """Runners take 100 runs/s and 300 are offered: once the queue holds more than a second of their
    work, the router admits about what they take and the queue stays near a second's worth; when the
    load drops, everything is admitted again within a few seconds."""
    gate, clock = admission(max_wait=1.0, floor=50)
    region = Region(gate, clock, capacity=100)
    assert region.run(offered=300, seconds=3) < 600
    assert region.why is not None
    assert "runs queued for region local" in region.why
    assert "at 100 runs/s (bound 1 s)" in region.why
    admitted = region.run(offered=300, seconds=10)
    assert 900 <= admitted <= 1150, admitted  # ~ the runners' 100/s, not the 300/s offered
    assert region.max_depth <= 100 * 1.0 + 300 * 0.2 + 50, region.max_depth
    region.run(offered=50, seconds=4)
    assert region.depth < 50
    assert region.run(offered=50, seconds=5) == 250


def test_runs_held_by_the_runners_count_once_the_queue_is_not_empty() -> None:
    """A runner announces it holds up to 256 runs: with runs waiting in the queue its prefetch is full, so
    at 100 runs/s a new run waits 2.56 s more than the queue shows, and the router sheds sooner."""
    gate, clock = admission(max_wait=1.0, floor=20)
    gate.runner_seen("local", "r1", 256)
    region = Region(gate, clock, capacity=100)
    assert region.run(offered=300, seconds=5) < 600
    assert region.max_depth <= 20 + 300 * 0.2 + 30, region.max_depth
    assert region.why is not None
    assert "and 256 held by its runners" in region.why
    clock.now += 31  # the runner's heartbeats stopped: its capacity no longer counts
    assert gate.held("local") == 0


def test_a_queue_nobody_takes_from_is_an_outage_not_overload() -> None:
    """Once no runner took anything for ``idle_after`` (killed, restarting), runs keep their old fate
    (expired or no_runner), so a runner back within the expiry still runs them."""
    gate, clock = admission(floor=10)
    region = Region(gate, clock, capacity=150)
    region.run(offered=100, seconds=2)
    region.capacity = 0  # the runner is killed
    region.run(offered=100, seconds=1.5)  # a stall shorter than idle_after may still look like overload
    assert region.run(offered=100, seconds=1) == 100
    assert gate.verdict("local") is None


def test_a_small_backlog_is_not_shed() -> None:
    gate, clock = admission(max_wait=0.1, floor=500)
    assert Region(gate, clock, capacity=350).run(offered=400, seconds=5) == 2000


def test_publishes_between_samples_count_towards_the_backlog() -> None:
    """The decision follows each publish, not only each sample: a second's worth of runs published
    right after a sample is enough to shed."""
    gate, clock = admission(max_wait=1.0, floor=0)
    gate.observe("local", 0)
    clock.now += 1.0
    gate.published("local", 100)
    gate.observe("local", 0)  # take rate 100/s, queue empty
    assert gate.verdict("local") is None
    gate.published("local", 101)
    assert gate.verdict("local") is not None
    clock.now += 0.5  # half a second later the runners have taken ~50 of them
    assert gate.verdict("local") is None


async def test_a_region_whose_queue_cannot_be_probed_is_left_alone_for_a_while() -> None:
    clock = Clock()
    depths = Depths()
    gate = Admission(depths, max_wait=1.0, floor=0, blind_for=60, clock=clock)
    depths.depth["runner.local"] = 0
    assert gate.verdict("local") is None
    assert gate.verdict("eu-north-1") is None  # its queue lives on the region's own broker
    await gate.sample()
    clock.now += 1
    gate.published("local", 500)
    gate.published("eu-north-1", 500)
    await gate.sample()
    assert gate.backlog("local") is not None
    assert gate.backlog("eu-north-1") is None
    depths.depth["runner.eu-north-1"] = 10_000
    clock.now += 30
    await gate.sample()
    assert gate.backlog("eu-north-1") is None  # not looked at again yet
    await gate.stop()
    assert depths.stopped


def test_without_a_probe_or_with_a_zero_bound_nothing_is_shed() -> None:
    clock = Clock()
    for gate in (Admission(None, clock=clock), Admission(Depths(), max_wait=0, floor=0, clock=clock)):
        gate.observe("local", 0)
        clock.now += 1
        gate.observe("local", 10_000)
        assert gate.verdict("local") is None


class Swallowing(Depths):
    """A probe whose call swallows a cancellation, as the broker client on the probe's path did once its
    broker had restarted (the fault suite's SIGTERM after a broker restart: the router never exited)."""

    async def queue_depth(self, queue: str) -> int:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return 0


async def test_stop_ends_sampling_even_when_a_probe_swallows_the_cancellation() -> None:
    gate = Admission(Swallowing(), max_wait=1.0, floor=50, every=0.01)
    gate.published("local")  # a region routed to lately: it is sampled
    await gate.start()
    await asyncio.sleep(0.05)
    stopping = asyncio.ensure_future(gate.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)  # not wait_for: the swallowed cancel would hang it
    assert done, "stop() still waits for the sampling task 5 s later"
