"""Counters of alert delivery and incidents, rendered in the Prometheus text format for ``/metrics``."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.db.models import Incident, Notification

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

Labels = tuple[tuple[str, str], ...]


class Registry:
    """A thread-safe set of labelled counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = defaultdict(dict)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add ``amount`` to the counter ``name`` with ``labels``."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self._values[name]
            series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        """The current value (0 if never incremented); with no labels, the sum over all label sets."""
        with self._lock:
            series = self._values.get(name, {})
            if not labels:
                return sum(series.values())
            return series.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """Every counter in the Prometheus text exposition format (declared ones even when zero)."""
        lines: list[str] = []
        with self._lock:
            names = sorted(set(HELP) | set(self._values))
            for name in names:
                lines.append(f"# HELP {name} {HELP.get(name, name)}")
                lines.append(f"# TYPE {name} counter")
                series = self._values.get(name) or {(): 0.0}
                for labels, value in sorted(series.items()):
                    lines.append(f"{name}{_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


#: The process-wide registry the service increments.
METRICS: Final = Registry()


def render_metrics(registry: Registry = METRICS) -> str:
    """The alerts counters as Prometheus text (what the api serves at ``/metrics``)."""
    return registry.render()


async def render_stored_metrics(sessions: async_sessionmaker[AsyncSession]) -> str:
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
