"""Shields-style SVG badges of a check or a status page: state, availability over 24 h / 7 d / 30 d, p95.

A check's badges are reachable only through its badge token (random, stored, rotatable), so a README
can show a private check's health without its id, name or URL being exposed.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from typing import Any, Final

from sqlalchemy import delete, select

from contracts.v1.base import utcnow
from services.api.status_view import STATE_RANK, check_state, in_maintenance, rollups_since
from services.common.db import rollups
from services.common.db.incidents import load_global
from services.common.db.models import AlertState, Check, CheckBadge, Incident, RunRollup
from services.common.db.sessions import Sessions
from services.common.errors import NotFound

KINDS: Final = ("status", "uptime-24h", "uptime-7d", "uptime-30d", "p95")
WINDOWS: Final = {
    "uptime-24h": timedelta(hours=24),
    "uptime-7d": timedelta(days=7),
    "uptime-30d": timedelta(days=30),
}
COLOURS: Final = {
    "operational": "#3fb950",
    "degraded": "#d29922",
    "down": "#e5534b",
    "maintenance": "#6e7bf2",
    "unknown": "#8b949e",
}
#: Rough glyph widths of Verdana 11px, enough to size a badge without a font file.
_NARROW: Final = frozenset("iljtfrI.,:;|!' ")
_WIDE: Final = frozenset("mwMW%@")


def text_width(text: str) -> float:
    """Approximate rendered width in px of ``text`` at 11 px Verdana."""
    return sum(4.0 if ch in _NARROW else 10.0 if ch in _WIDE else 7.0 for ch in text)


def svg(label: str, message: str, colour: str) -> str:
    """A flat two-part badge: grey label, coloured message."""
    left = round(text_width(label) + 10)
    right = round(text_width(message) + 10)
    total = left + right
    label_e, message_e = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" '
        f'aria-label="{label_e}: {message_e}"><title>{label_e}: {message_e}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#s)"/></g>'
        f'<g fill="#fff" text-anchor="middle" font-size="11" '
        f'font-family="Verdana,Geneva,DejaVu Sans,sans-serif">'
        f'<text x="{left / 2:.1f}" y="14">{label_e}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message_e}</text></g></svg>'
    )


def uptime_colour(value: float | None) -> str:
    """Green at 99.9 % and above, then yellow, orange, red; grey with no data."""
    if value is None:
        return COLOURS["unknown"]
    if value >= 99.9:
        return COLOURS["operational"]
    if value >= 99.0:
        return "#a4c639"
    return COLOURS["degraded"] if value >= 95.0 else COLOURS["down"]


async def token_for(sessions: Sessions, check_id: uuid.UUID, *, rotate: bool = False) -> str:
    """The check's badge token, made on first use; ``rotate`` replaces it (old badge URLs stop working)."""
    async with sessions() as session, session.begin():
        if await session.get(Check, check_id) is None:
            raise NotFound(f"no check with id {check_id}")
        row: CheckBadge | None = await session.get(CheckBadge, check_id)
        if row is not None and not rotate:
            return row.token
        if row is not None:
            await session.execute(delete(CheckBadge).where(CheckBadge.check_id == check_id))
        token = secrets.token_urlsafe(24)
        session.add(CheckBadge(check_id=check_id, token=token, created_at=utcnow()))
    return token


async def existing_token(sessions: Sessions, check_id: uuid.UUID) -> str | None:
    """The check's badge token if one was made (reading never makes one)."""
    async with sessions() as session:
        row: CheckBadge | None = await session.get(CheckBadge, check_id)
    return row.token if row else None


async def check_of_token(sessions: Sessions, token: str) -> uuid.UUID | None:
    """The check a badge token belongs to, if any."""
    async with sessions() as session:
        found: uuid.UUID | None = (
            await session.scalars(select(CheckBadge.check_id).where(CheckBadge.token == token))
        ).one_or_none()
    return found


async def figures(
    sessions: Sessions, check_ids: Sequence[uuid.UUID], kind: str, *, now: datetime | None = None
) -> tuple[str, str, str]:
    """(label, message, colour) of badge ``kind`` over ``check_ids`` taken together."""
    now = now or utcnow()
    if kind == "status":
        worst = None
        async with sessions() as session:
            _, windows = await load_global(session)
            specs: dict[uuid.UUID, Any] = dict(
                (await session.execute(select(Check.id, Check.spec).where(Check.id.in_(check_ids)))).all()
            )
            incidents = {
                row.check_id: row
                for row in await session.scalars(
                    select(Incident).where(Incident.check_id.in_(check_ids), Incident.state == "open")
                )
            }
            states: dict[uuid.UUID, Any] = dict(
                (
                    await session.execute(
                        select(AlertState.check_id, AlertState.state).where(
                            AlertState.check_id.in_(check_ids)
                        )
                    )
                ).all()
            )
        for check_id in check_ids:
            spec = specs.get(check_id) or {}
            state, _ = check_state(
                region_count=len(spec.get("regions") or []),
                incident=incidents.get(check_id),
                degraded=bool((states.get(check_id) or {}).get("degraded")),
                in_maintenance=in_maintenance(spec, windows, now),
            )
            if worst is None or STATE_RANK.index(state) < STATE_RANK.index(worst):
                worst = state
        if worst is None:
            return "status", "unknown", COLOURS["unknown"]
        return "status", {"operational": "up"}.get(worst, worst), COLOURS[worst]
    window = WINDOWS.get(kind, timedelta(hours=24))
    since = rollups.hour_of(now - window)
    async with sessions() as session:
        rows = (
            await session.execute(
                select(RunRollup.total, RunRollup.missed, RunRollup.passed, RunRollup.latency_hist).where(
                    *rollups_since(check_ids, since)
                )
            )
        ).all()
    attempted = sum(total - missed for total, missed, _, _ in rows)
    passed = sum(p for _, _, p, _ in rows)
    if kind == "p95":
        hist: dict[str, int] = {}
        for *_, row_hist in rows:
            for bucket, count in (row_hist or {}).items():
                hist[bucket] = hist.get(bucket, 0) + count
        p95 = rollups.percentile(hist, 0.95)
        if p95 is None:
            return "p95 24h", "no data", COLOURS["unknown"]
        message = f"{p95 / 1000:.2f} s" if p95 >= 1000 else f"{p95:.0f} ms"
        colour = (
            COLOURS["operational"] if p95 < 500 else COLOURS["degraded"] if p95 < 2000 else COLOURS["down"]
        )
        return "p95 24h", message, colour
    label = f"uptime {kind.removeprefix('uptime-')}"
    if not attempted:
        return label, "no data", COLOURS["unknown"]
    value = 100.0 * passed / attempted
    return label, f"{value:.2f}%" if value < 100 else "100%", uptime_colour(value)
