"""Prometheus metrics of this process (``prometheus-client``): each service process serves its own.

Every service process exposes what *it* did on its own ``/metrics`` (the ops server, see
:mod:`services.common.ops`, and the api's port): in distributed mode a counter incremented by the alerts
process is read from the alerts process, never from the api, where it would read 0 forever. The metric
objects below live in the process-wide default registry; :class:`Registry` keeps the small
``inc(name, **labels)`` interface the alerting code and its tests use, on a registry of its own when a test
wants one.
"""

from __future__ import annotations

import threading
from typing import Final

from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from sqlalchemy import func, select

from services.common.db.models import Incident, Notification
from services.common.db.sessions import Sessions

# ``*_created`` series double every counter for a timestamp nobody graphs.
disable_created_metrics()  # type: ignore[no-untyped-call]

HELP: Final[dict[str, str]] = {
    "seymour_notifications_sent_total": "Notifications delivered, by channel kind and event.",
    "seymour_notifications_failed_total": "Notifications given up on, by channel kind and event.",
    "seymour_notification_attempts_total": "Delivery attempts, by channel kind and outcome.",
    "seymour_incidents_opened_total": "Incidents opened.",
    "seymour_incidents_resolved_total": "Incidents resolved.",
    "seymour_alert_slots_evaluated_total": "Slots evaluated by the policy engine, by verdict.",
    "seymour_alert_results_ignored_total": "Results that changed nothing, by reason (late, manual, ...).",
    "seymour_bus_refused_total": "Messages dead-lettered unread: oversized, or from a sender not believed.",
}


#: Label names of each counter in :data:`HELP`, declared up front so each shows (at 0) before it moves.
LABELS: Final[dict[str, tuple[str, ...]]] = {
    "seymour_notifications_sent_total": ("channel", "event"),
    "seymour_notifications_failed_total": ("channel", "event"),
    "seymour_notification_attempts_total": ("channel", "outcome"),
    "seymour_incidents_opened_total": (),
    "seymour_incidents_resolved_total": (),
    "seymour_alert_slots_evaluated_total": ("verdict",),
    "seymour_alert_results_ignored_total": ("reason",),
    "seymour_bus_refused_total": ("queue", "reason"),
}


class Registry:
    """Labelled counters by name on a ``prometheus_client`` registry; a counter's label names are fixed
    by its first increment."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[Counter, tuple[str, ...]]] = {}
        for name, label_names in LABELS.items():
            self._counter(name, label_names)

    def _counter(self, name: str, label_names: tuple[str, ...]) -> Counter:
        with self._lock:
            found = self._counters.get(name)
            if found is None:
                base = name.removesuffix("_total")
                counter = Counter(base, HELP.get(name, name), label_names, registry=self._registry)
                found = self._counters[name] = (counter, label_names)
        counter, known = found
        if known != label_names:
            raise ValueError(f"{name} has labels {known}, not {label_names}")
        return counter

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``."""
        counter = self._counter(name, tuple(sorted(labels)))
        (counter.labels(**labels) if labels else counter).inc(amount)

    def value(self, name: str, **labels: str) -> float:
        """The current value (0 if never incremented); with no labels, the sum over all label sets."""
        if labels:
            return self._registry.get_sample_value(name, labels) or 0.0
        total = 0.0
        for family in self._registry.collect():
            total += sum(sample.value for sample in family.samples if sample.name == name)
        return total

    def render(self) -> str:
        """Every metric of this registry in the Prometheus text exposition format."""
        return generate_latest(self._registry).decode()


#: The process-wide registry the service increments (the default ``prometheus_client`` registry).
METRICS: Final = Registry(DEFAULT_REGISTRY)

_LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_PHASE_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RUNS_STORED: Final = Counter(
    "seymour_runs", "Runs stored (first write only), by region and status.", ["region", "status"]
)
RUN_LAG: Final = Histogram(
    "seymour_run_lag_seconds",
    "From a run's slot to its row being committed, by region.",
    ["region"],
    buckets=_LAG_BUCKETS,
)
RUN_PHASE: Final = Histogram(
    "seymour_run_phase_seconds",
    "Phase timings of runs made by this runner (dns, connect, tls, ttfb, download, total).",
    ["region", "phase"],
    buckets=_PHASE_BUCKETS,
)
RUNS_MADE: Final = Counter(
    "seymour_runner_runs", "Runs made (or found expired) by this runner.", ["region", "status"]
)
MESSAGES_CONSUMED: Final = Counter(
    "seymour_messages_consumed", "Messages handled and acked, by queue and kind.", ["queue", "kind"]
)
MESSAGES_PUBLISHED: Final = Counter(
    "seymour_messages_published",
    "Messages published and confirmed, by exchange and kind.",
    ["exchange", "kind"],
)
MESSAGES_REDELIVERED: Final = Counter(
    "seymour_messages_redelivered", "Deliveries the broker marked as redelivered, by queue.", ["queue"]
)
MESSAGES_DEAD_LETTERED: Final = Counter(
    "seymour_messages_dead_lettered",
    "Messages this process dead-lettered, by queue and reason.",
    ["queue", "reason"],
)
HANDLER_FAILURES: Final = Counter(
    "seymour_handler_failures", "Handler calls that raised (the message is retried), by queue.", ["queue"]
)
QUEUE_DEPTH: Final = Gauge(
    "seymour_queue_depth",
    "Messages ready in a queue this process consumes (and the dead letters).",
    ["queue"],
)
BUS_CONNECTED: Final = Gauge("seymour_bus_connected", "1 while this process's broker connection is open.")
SCHEDULER_LEADER: Final = Gauge("seymour_scheduler_leader", "1 while this scheduler process leads.")
SCHEDULER_EPOCH: Final = Gauge(
    "seymour_scheduler_epoch", "Fencing epoch of this scheduler's current or last leadership."
)
SCHEDULER_SLOTS: Final = Counter(
    "seymour_scheduler_slots",
    "Slots dealt with by the leader: fired, fired_late, or missed by reason.",
    ["outcome"],
)
SCHEDULER_BACKLOG: Final = Gauge("seymour_scheduler_backlog", "Slots (or misses) waiting for the broker.")
DB_UNAVAILABLE: Final = Gauge(
    "seymour_db_unavailable", "1 while this process's writes wait for the database.", ["component"]
)
DB_RETRIES: Final = Counter(
    "seymour_db_retries", "Database operations retried because the database was away.", ["component"]
)


def render_metrics(registry: Registry = METRICS) -> str:
    """This process's metrics as Prometheus text."""
    return registry.render()


async def render_stored_metrics(sessions: Sessions) -> str:
    """Gauges read from the database, true whichever process does the alerting: open incidents and
    notifications pending / failed as stored."""
    async with sessions() as session:
        open_incidents = await session.scalar(
            select(func.count()).select_from(Incident).where(Incident.state == "open")
        )
        rows = (
            await session.execute(select(Notification.status, func.count()).group_by(Notification.status))
        ).all()
    by_status = {status: count for status, count in rows}
    lines = [
        "# HELP seymour_incidents_open Incidents open now.",
        "# TYPE seymour_incidents_open gauge",
        f"seymour_incidents_open {open_incidents or 0}",
        "# HELP seymour_notifications_stored Notifications in the outbox, by status.",
        "# TYPE seymour_notifications_stored gauge",
    ]
    for status in ("pending", "sent", "failed"):
        lines.append(f'seymour_notifications_stored{{status="{status}"}} {by_status.get(status, 0)}')
    return "\n".join(lines) + "\n"
