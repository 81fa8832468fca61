"""Incidents and the outbox in the database: one engine step's effects written in the caller's transaction.

The reads the api shows and the global alert settings live in :mod:`services.common.db.incidents`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.checks import CheckSpec
from contracts.v1.regions import display_name
from services.alerts.compose import compose
from services.alerts.policy import IncidentSnapshot, Outcome
from services.common.channels.base import describe_assertion
from services.common.db.models import Incident, Notification


def _regions_json(snapshot: IncidentSnapshot) -> list[dict[str, Any]]:
    return [
        {"region": region, "name": display_name(region), "status": outcome.status}
        for region, outcome in sorted(snapshot.failing.items())
    ]


def _assertions_json(snapshot: IncidentSnapshot) -> list[dict[str, Any]]:
    rows = []
    for region, outcome in sorted(snapshot.failing.items()):
        detail = outcome.detail.model_dump(mode="json") if outcome.detail is not None else {}
        line = describe_assertion(outcome.detail)
        rows.append({"region": region, **detail, "text": line.text if line else outcome.status})
    return rows


async def apply_outcome(
    session: AsyncSession,
    *,
    check_id: uuid.UUID,
    spec: CheckSpec,
    outcome: Outcome,
    base_url: str,
    now: datetime,
) -> int:
    """Persist incidents opened/resolved and one pending notification per event × subscribed channel.

    Runs inside the caller's transaction, together with the engine state, so a crash either keeps all of
    it or none. Idempotency keys (``<incident>:<transition>[:n]:<channel index>``) make a repeat a no-op.
    Returns how many notifications were queued.
    """
    for snapshot in outcome.opened:
        await session.execute(
            update(Incident)
            .where(Incident.check_id == check_id, Incident.state == "open", Incident.id != snapshot.id)
            .values(state="resolved", resolved_at=now, resolve_reason="superseded by a newer incident")
        )
        if await session.get(Incident, snapshot.id) is None:
            session.add(
                Incident(
                    id=snapshot.id,
                    check_id=check_id,
                    state="open",
                    opened_at=snapshot.opened_at,
                    opened_slot=snapshot.slot,
                    failing_regions=_regions_json(snapshot),
                    failing_assertions=_assertions_json(snapshot),
                    held=snapshot.id in outcome.held,
                    reminders_sent=0,
                    details={"note": snapshot.note} if snapshot.note else {},
                )
            )
            await session.flush()
    for resolution in outcome.resolved:
        await session.execute(
            update(Incident)
            .where(Incident.id == resolution.incident_id, Incident.state == "open")
            .values(state="resolved", resolved_at=resolution.at, resolve_reason=resolution.reason)
        )
    queued = 0
    for event in outcome.events:
        incident_id = event.incident.id if event.incident else None
        if incident_id is not None and event.kind in ("failure", "reminder"):
            values: dict[str, Any] = {"held": False, "last_notified_at": event.at}
            if event.kind == "reminder":
                values["reminders_sent"] = int(event.detail.get("reminder", 0))
            await session.execute(update(Incident).where(Incident.id == incident_id).values(**values))
        for index, channel in enumerate(spec.alerts):
            if event.kind not in channel.on:
                continue
            key = f"{event.key}:{index}"
            if await session.scalar(select(Notification.id).where(Notification.idempotency_key == key)):
                continue
            message = compose(
                event, check_id=check_id, check_name=spec.name, base_url=base_url, idempotency_key=key
            )
            session.add(
                Notification(
                    idempotency_key=key,
                    incident_id=incident_id,
                    check_id=check_id,
                    channel_index=index,
                    channel_type=channel.channel,
                    transition=event.kind,
                    status="pending",
                    attempts=0,
                    payload=message.model_dump(mode="json"),
                    attempt_log=[],
                    created_at=now,
                    next_attempt_at=now,
                )
            )
            queued += 1
    return queued


async def close_open_incidents(
    session: AsyncSession, check_id: uuid.UUID, reason: str, now: datetime
) -> None:
    """Resolve a check's open incident without notifying (the check was deleted or disabled)."""
    await session.execute(
        update(Incident)
        .where(Incident.check_id == check_id, Incident.state == "open")
        .values(state="resolved", resolved_at=now, resolve_reason=reason)
    )
