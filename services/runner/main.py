"""Runner composition root: settings → checker, heartbeat → the route for this region's queue."""

from __future__ import annotations

from functools import partial

from contracts.topology import runner_queue
from contracts.v1 import RunCheck
from services.common.bus import Bus, Route
from services.common.db.sessions import Sessions
from services.common.netguard import AddressGuard
from services.common.service import Service
from services.common.settings import Settings
from services.runner.budget import MIB, BodyBudget, effective_concurrency
from services.runner.handlers import Load, handle_run_check
from services.runner.heartbeat import Heartbeat, default_runner_id
from services.runner.http_check import HttpChecker
from services.runner.outbox import Outbox


def build(settings: Settings, bus: Bus, sessions: Sessions | None = None) -> Service:
    """The runner for ``settings.region``: no database, one HTTP session, one outbox, one heartbeat. It takes
    ``runner_concurrency`` runs at once, fewer if the body budget cannot hold that many default-sized
    bodies (see :mod:`services.runner.budget`)."""
    runner_id = settings.runner_id or default_runner_id()
    load = Load()
    budget_bytes = settings.runner_memory_budget_mb * MIB
    concurrency = effective_concurrency(settings.runner_concurrency, budget_bytes)
    checker = HttpChecker(
        region=settings.region,
        guard=AddressGuard.from_settings(settings),
        limit=concurrency,
        budget=BodyBudget(budget_bytes),
    )
    heartbeat = Heartbeat(
        bus,
        runner_id=runner_id,
        region=settings.region,
        capacity=concurrency,
        interval=settings.heartbeat_interval,
        load=load,
    )
    outbox = Outbox(
        bus,
        region=settings.region,
        max_items=settings.runner_batch_items,
        max_wait_ms=settings.runner_batch_ms,
    )
    handler = partial(
        handle_run_check, checker=checker, publisher=bus, outbox=outbox, runner_id=runner_id, load=load
    )
    route = Route(runner_queue(settings.region), {RunCheck: handler}, prefetch=concurrency)
    # The outbox stops after the consumers (lifecycles stop after routes), so the handlers still waiting
    # on a batch when the runner is told to stop see it sent and confirmed before their runs are acked.
    return Service("runner", routes=[route], lifecycles=[checker, outbox, heartbeat])
