"""Composition root of the alerts service: settings → evaluator, ticker, outbox sender → routes."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from contracts.topology import ALERTS_EVALUATE
from contracts.v1 import CheckCompleted, CheckCompletedBatch, RunMissed
from contracts.v1.base import utcnow
from services.alerts.delivery import DeliveryConfig, Sender
from services.alerts.evaluator import Clock, Evaluator, EvaluatorConfig, Ticker
from services.alerts.handlers import (
    BATCHED,
    evaluate_batch,
    handle_check_completed,
    handle_check_completed_batch,
    handle_run_missed,
    items_in,
    observe_batch,
)
from services.common.bus import Batch, Publisher, Route
from services.common.channels.probe import smtp_config
from services.common.db.batches import Batcher
from services.common.db.sessions import Sessions
from services.common.netguard import AddressGuard
from services.common.secretbox import LazyBox
from services.common.service import Service
from services.common.settings import Settings


@dataclass(frozen=True)
class AlertsOptions:
    """Knobs tests and embedders may change; production uses the defaults."""

    clock: Clock = utcnow
    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    tick_interval: float = 1.0
    #: Results folded per transaction at most, and how long the first waits for company.
    batch_size: int = 256
    batch_ms: float = 50.0


def build(
    settings: Settings,
    bus: Publisher,
    sessions: Sessions,
    options: AlertsOptions | None = None,
) -> Service:
    """The alerts service: one route on ``alerts.evaluate``, a ticker and the outbox sender as lifecycles."""
    options = options or AlertsOptions()
    evaluator_config = options.evaluator
    if evaluator_config.runner_dead_after != settings.runner_dead_after:
        evaluator_config = EvaluatorConfig(
            grace=evaluator_config.grace,
            confirmation_wait=evaluator_config.confirmation_wait,
            settings_ttl=evaluator_config.settings_ttl,
            runner_dead_after=settings.runner_dead_after,
        )
    sender = Sender(
        sessions,
        smtp=smtp_config(settings),
        clock=options.clock,
        config=options.delivery,
        guard=AddressGuard.from_settings(settings),
        box=LazyBox(settings),
    )
    evaluator = Evaluator(
        sessions,
        bus,
        base_url=settings.public_base_url(),
        clock=options.clock,
        config=evaluator_config,
        on_queued=sender.wake,
    )
    ticker = Ticker(evaluator, sessions, clock=options.clock, max_sleep=options.tick_interval)
    batcher = Batcher(
        evaluate_batch(evaluator), max_items=options.batch_size, max_wait_ms=options.batch_ms, name="alerts"
    )
    handlers: dict[type, Any] = {
        CheckCompleted: functools.partial(handle_check_completed, batcher=batcher),
        CheckCompletedBatch: functools.partial(handle_check_completed_batch, batcher=batcher),
        RunMissed: functools.partial(handle_run_missed, batcher=batcher),
    }
    # Results arrive in bus batches (one call, one ack per batch). Three batches' worth unacked: two in
    # flight (one commits while the next is handed over), the following one already delivered. That
    # counts messages; a runner's batch of a hundred results weighs a hundred, and the bus narrows the
    # prefetch to hold about ``alerts_inflight_items`` results.
    batch = Batch(
        functools.partial(observe_batch, batcher=batcher),
        BATCHED,
        max_items=options.batch_size,
        max_wait_ms=options.batch_ms,
        weight=items_in,
        inflight_items=settings.alerts_inflight_items,
    )
    route = Route(
        ALERTS_EVALUATE, handlers, prefetch=max(settings.prefetch, 3 * options.batch_size), batch=batch
    )
    return Service(name="alerts", routes=[route], lifecycles=[batcher, sender, ticker])
