"""Incidents and the outbox in the database: one engine step's effects written in the caller's transaction,
plus the queries the api shows (``/api/v1/incidents``, the check page) and the global alert settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.v1.checks import AlertPolicy, CheckSpec, MaintenanceWindow
from contracts.v1.regions import display_name
from services.alerts.channels.base import describe_assertion
from services.alerts.compose import compose
from services.alerts.policy import IncidentSnapshot, Outcome
from services.common.db.models import Incident, Notification, Setting

POLICY_KEY: Final = "alerts.policy"
MAINTENANCE_KEY: Final = "alerts.maintenance"


def _regions_json(snapshot: IncidentSnapshot) -> list[dict[str, Any]]:
    return [
        {"region": region, "name": display_name(region), "status": outcome.status}
        for region, outcome in sorted(snapshot.failing.items())
    ]


def _assertions_json(snapshot: IncidentSnapshot) -> list[dict[str, Any]]:
    rows = []
    for region, outcome in sorted(snapshot.failing.items()):
        detail = outcome.detail or {}
        line = describe_assertion(detail)
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


def _notification_json(row: Notification) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "channel_index": row.channel_index,
        "channel": row.channel_type,
        "transition": row.transition,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "attempt_log": row.attempt_log,
        "created_at": row.created_at.isoformat(),
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def incident_json(row: Incident, notifications: list[Notification] | None = None) -> dict[str, Any]:
    """An incident as the api returns it (with its notification attempts when given)."""
    data: dict[str, Any] = {
        "id": str(row.id),
        "check_id": str(row.check_id),
        "state": row.state,
        "opened_at": row.opened_at.isoformat(),
        "opened_slot": row.opened_slot.isoformat() if row.opened_slot else None,
        "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None,
        "resolve_reason": row.resolve_reason,
        "failing_regions": row.failing_regions,
        "failing_assertions": row.failing_assertions,
        "reminders_sent": row.reminders_sent,
        "last_notified_at": row.last_notified_at.isoformat() if row.last_notified_at else None,
        "held": row.held,
        "note": (row.details or {}).get("note"),
    }
    if notifications is not None:
        data["notifications"] = [_notification_json(n) for n in notifications]
    return data


async def list_incidents(
    sessions: async_sessionmaker[AsyncSession],
    *,
    state: str | None = None,
    check_id: uuid.UUID | None = None,
    limit: int = 100,
    offset: int = 0,
    with_notifications: bool = False,
) -> list[dict[str, Any]]:
    """Incidents, newest first, filtered by ``state`` (``open``/``resolved``) and ``check_id``."""
    query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id)
    if state is not None:
        query = query.where(Incident.state == state)
    if check_id is not None:
        query = query.where(Incident.check_id == check_id)
    async with sessions() as session:
        rows = list((await session.scalars(query.limit(max(1, min(limit, 1000))).offset(offset))).all())
        by_incident: dict[uuid.UUID, list[Notification]] = {}
        if with_notifications and rows:
            notes = await session.scalars(
                select(Notification)
                .where(Notification.incident_id.in_([row.id for row in rows]))
                .order_by(Notification.created_at, Notification.channel_index)
            )
            for note in notes:
                if note.incident_id is not None:
                    by_incident.setdefault(note.incident_id, []).append(note)
    return [incident_json(row, by_incident.get(row.id, []) if with_notifications else None) for row in rows]


async def get_incident(
    sessions: async_sessionmaker[AsyncSession], incident_id: uuid.UUID
) -> dict[str, Any] | None:
    """One incident with every notification attempt, or ``None``."""
    async with sessions() as session:
        row = await session.get(Incident, incident_id)
        if row is None:
            return None
        notes = list(
            (
                await session.scalars(
                    select(Notification)
                    .where(Notification.incident_id == incident_id)
                    .order_by(Notification.created_at, Notification.channel_index)
                )
            ).all()
        )
    return incident_json(row, notes)


async def list_failed_notifications(
    sessions: async_sessionmaker[AsyncSession], *, check_id: uuid.UUID | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Notifications given up on, newest first (for the UI's 'delivery failed' list)."""
    query = (
        select(Notification).where(Notification.status == "failed").order_by(Notification.created_at.desc())
    )
    if check_id is not None:
        query = query.where(Notification.check_id == check_id)
    async with sessions() as session:
        rows = (await session.scalars(query.limit(limit))).all()
    return [{"check_id": str(row.check_id), **_notification_json(row)} for row in rows]


async def load_global(session: AsyncSession) -> tuple[AlertPolicy | None, tuple[MaintenanceWindow, ...]]:
    """The global policy (if set) and global maintenance windows from the ``settings`` table."""
    policy_row = await session.get(Setting, POLICY_KEY)
    windows_row = await session.get(Setting, MAINTENANCE_KEY)
    policy = AlertPolicy.model_validate(policy_row.value) if policy_row is not None else None
    windows = tuple(
        MaintenanceWindow.model_validate(w)
        for w in (windows_row.value.get("windows", []) if windows_row else [])
    )
    return policy, windows


async def save_global(
    sessions: async_sessionmaker[AsyncSession],
    *,
    policy: AlertPolicy | None = None,
    maintenance: list[MaintenanceWindow] | None = None,
    now: datetime,
) -> None:
    """Store the global policy and/or global maintenance windows (what the api's settings page writes)."""
    async with sessions() as session, session.begin():
        if policy is not None:
            await session.merge(Setting(key=POLICY_KEY, value=policy.model_dump(mode="json"), updated_at=now))
        if maintenance is not None:
            value = {"windows": [w.model_dump(mode="json") for w in maintenance]}
            await session.merge(Setting(key=MAINTENANCE_KEY, value=value, updated_at=now))


def effective_policy(check: AlertPolicy, global_policy: AlertPolicy | None) -> AlertPolicy:
    """The check's policy, where each field left at its default takes the global value instead."""
    if global_policy is None:
        return check
    default = AlertPolicy()
    merged = {
        name: getattr(global_policy if getattr(check, name) == getattr(default, name) else check, name)
        for name in AlertPolicy.model_fields
    }
    return AlertPolicy.model_validate(merged)
