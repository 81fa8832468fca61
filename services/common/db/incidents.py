"""Incidents, notifications and global alert settings as stored: the reads the api shows
(``/api/v1/incidents``, the check page, failed deliveries) and the settings both the api and alerts use."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.v1.checks import AlertPolicy, MaintenanceWindow
from services.common.db.models import Incident, Notification, Setting
from services.common.db.sessions import Sessions

POLICY_KEY: Final = "alerts.policy"
MAINTENANCE_KEY: Final = "alerts.maintenance"
_GLOBAL_KEYS: Final = (POLICY_KEY, MAINTENANCE_KEY)


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
    sessions: Sessions,
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


async def get_incident(sessions: Sessions, incident_id: uuid.UUID) -> dict[str, Any] | None:
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
    sessions: Sessions, *, check_id: uuid.UUID | None = None, limit: int = 100
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
    """The global policy (if set) and global maintenance windows from the ``settings`` table, in one
    statement (every check page reads them)."""
    rows = await session.execute(select(Setting.key, Setting.value).where(Setting.key.in_(_GLOBAL_KEYS)))
    found: dict[str, Any] = {key: value for key, value in rows}
    policy_value = found.get(POLICY_KEY)
    policy = AlertPolicy.model_validate(policy_value) if policy_value is not None else None
    windows = tuple(
        MaintenanceWindow.model_validate(w) for w in (found.get(MAINTENANCE_KEY) or {}).get("windows", [])
    )
    return policy, windows


async def save_global(
    sessions: Sessions,
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
