"""PagerDuty Events API v2: ``trigger`` on failure, ``resolve`` on recovery, one dedup key per incident."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from contracts.v1.checks import PagerDutyChannel
from services.common.channels.base import AlertMessage, ChannelInfo, HttpRequest, truncate

EVENTS_URL: Final = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX: Final = 1024
DEDUP_MAX: Final = 255
SEVERITY: Final[dict[str, str]] = {
    "failure": "critical",
    "reminder": "critical",
    "recovery": "info",
    "degraded": "warning",
    "flapping": "warning",
    "test": "info",
}


def dedup_key(message: AlertMessage) -> str:
    """One key per incident (so trigger and resolve meet); per event for alerts without an incident."""
    if message.incident_id is not None:
        return f"seymour-{message.incident_id}"
    return truncate(f"seymour-{message.idempotency_key}", DEDUP_MAX)


def payload(message: AlertMessage, routing_key: str) -> dict[str, Any]:
    """The event body for ``message``."""
    if message.event == "recovery":
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(message)}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(message),
        "payload": {
            "summary": truncate(f"{message.title}: {message.summary}", SUMMARY_MAX),
            "source": truncate(message.check_name, 255),
            "severity": SEVERITY[message.event],
            "timestamp": message.at.isoformat(),
            "component": truncate(message.check_name, 255),
            "class": message.event,
            "custom_details": dict(message.facts()),
        },
        "links": [{"href": message.url, "text": "Open check in Seymour"}],
        "client": "Seymour",
        "client_url": message.url,
    }


class PagerDutyProvider:
    """PagerDuty Events API v2."""

    info = ChannelInfo(
        kind="pagerduty",
        label="PagerDuty",
        model=PagerDutyChannel,
        destination="routing_key",
        secrets=("routing_key",),
        secret_url=True,
        placeholder="Integration (routing) key",
        destination_secret=True,
        shown_as="routing key {}",
    )

    def build(self, message: AlertMessage, channel: PagerDutyChannel, now: datetime) -> HttpRequest:
        """POST the event to the Events API (or the URL configured in front of it)."""
        body = json.dumps(payload(message, channel.routing_key)).encode()
        return HttpRequest(channel.url or EVENTS_URL, body)
