"""Router composition root: settings → dependencies → routes."""

from __future__ import annotations

import os
import uuid
from functools import partial
from typing import cast

from contracts.topology import ROUTER_DEAD_RUNS, ROUTER_DUE, router_heartbeats
from contracts.v1 import CheckDue, CheckDueBatch, RunCheck, RunnerHeartbeat
from services.common.bus import Bus, Route
from services.common.db.sessions import Sessions
from services.common.fencing import EpochFence
from services.common.secretbox import LazyBox
from services.common.service import Service
from services.common.settings import Settings
from services.router.admission import Admission, DepthProbe
from services.router.handlers import (
    RouterDeps,
    handle_check_due,
    handle_check_due_batch,
    handle_dead_run,
    handle_heartbeat,
)
from services.router.liveness import RunnerLiveness
from services.router.probe import BrokerProbe, InProcessProbe, ProbeBus


def depth_probe(settings: Settings, bus: Bus | None = None) -> DepthProbe | None:
    """Queue depths on a RabbitMQ connection of the router's own, or read off the in-process bus of
    ``seymour up`` (its runner shares the process, and an offer above what it runs queues up in memory
    just the same); none where neither is at hand."""
    if settings.broker_url.startswith(("amqp://", "amqps://")):
        from services.common.bus.rabbit import RabbitBus

        return BrokerProbe(lambda: RabbitBus(settings.broker_url, instance="router-admission"))
    if bus is not None and hasattr(bus, "queue_depth"):
        return InProcessProbe(cast(ProbeBus, bus))
    return None


def build(settings: Settings, bus: Bus, sessions: Sessions | None = None) -> Service:
    """The router: no database; everything it needs travels in the messages."""
    probe = depth_probe(settings, bus)
    admission = Admission(
        probe,
        max_wait=settings.router_shed_after,
        floor=settings.router_shed_floor,
        runner_stale_after=settings.runner_stale_after,
    )
    deps = RouterDeps(
        bus=bus,
        liveness=RunnerLiveness(stale_after=settings.runner_stale_after),
        fence=EpochFence(),
        ttl_min=settings.run_expiry_min,
        ttl_max=settings.run_expiry_max,
        box=LazyBox(settings),
        admission=admission,
    )
    instance = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return Service(
        "router",
        routes=[
            Route(
                ROUTER_DUE,
                {
                    CheckDue: partial(handle_check_due, deps=deps),
                    CheckDueBatch: partial(handle_check_due_batch, deps=deps),
                },
                prefetch=64,
            ),
            Route(ROUTER_DEAD_RUNS, {RunCheck: partial(handle_dead_run, deps=deps)}, prefetch=64),
            Route(
                router_heartbeats(instance),
                {RunnerHeartbeat: partial(handle_heartbeat, deps=deps)},
                prefetch=8,
            ),
        ],
        lifecycles=[admission],
    )
