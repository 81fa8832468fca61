"""Turning an engine event into the words a person reads (the neutral :class:`AlertMessage`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from services.alerts.policy import Event
from services.common.channels.base import AlertMessage, check_url, describe_assertion, region_lines


def _duration(delta: timedelta) -> str:
    seconds = int(max(0, delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def compose(
    event: Event, *, check_id: uuid.UUID, check_name: str, base_url: str, idempotency_key: str
) -> AlertMessage:
    """The message for one event on one channel."""
    incident = event.incident
    failing = {r: o.model_dump(mode="json") for r, o in incident.failing.items()} if incident else {}
    if event.kind == "degraded":
        failing = dict(event.detail.get("regions", {}))
    regions = region_lines(failing)
    first = None
    for region in sorted(failing):
        first = describe_assertion(failing[region].get("detail") or {})
        if first is not None:
            break
    where = ", ".join(line.name for line in regions) or "its regions"
    title, state, summary = _words(event, check_name, where, incident.opened_at if incident else None)
    return AlertMessage(
        event=event.kind,
        idempotency_key=idempotency_key,
        check_id=check_id,
        check_name=check_name,
        state=state,
        title=title,
        summary=summary,
        url=check_url(base_url, check_id),
        at=event.at,
        incident_id=incident.id if incident else None,
        opened_at=incident.opened_at if incident else None,
        resolved_at=incident.resolved_at if incident else None,
        resolve_reason=incident.resolve_reason if incident else None,
        failing_regions=regions,
        first_failure=first,
        note=incident.note if incident else None,
    )


def _words(event: Event, name: str, where: str, opened_at: datetime | None) -> tuple[str, str, str]:
    since = _duration(event.at - opened_at) if opened_at else ""
    if event.kind == "failure":
        return f"{name} is failing", "failing", f"{name} is failing from {where}."
    if event.kind == "reminder":
        return (
            f"{name} is still failing",
            "failing",
            f"{name} has been failing for {since} (reminder {event.detail.get('reminder', '')}).",
        )
    if event.kind == "recovery":
        return f"{name} recovered", "recovered", f"{name} is passing again after {since}."
    if event.kind == "degraded":
        return f"{name} is degraded", "degraded", f"{name} is slower than its soft threshold from {where}."
    return (
        f"{name} is flapping",
        "flapping",
        f"{name} opened and resolved {event.detail.get('transitions', '')} times in "
        f"{event.detail.get('window_minutes', '')} minutes; further changes are held until it settles.",
    )
