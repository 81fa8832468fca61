"""What a status page shows, read from rollups, incidents and the alert policy's state — never from a
check's configuration beyond its region list and maintenance windows, so nothing secret can leak.

Per check: a state (operational / degraded / down / maintenance), 90 daily availability bars, a 24 h
response-time sparkline; per page: open incidents and recent history. Closed days never change, so
their daily figures are kept in memory per check and only today's hours are read again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from markupsafe import Markup, escape
from sqlalchemy import func, or_, select

from contracts.v1.checks import MaintenanceWindow
from contracts.v1.regions import REGIONS, display_name
from services.api.status_pages import ResolvedGroup, StatusPageStore
from services.common.db.incidents import load_global
from services.common.db.models import AlertState, Check, Incident, RunRollup, StatusNotice, StatusPage
from services.common.db.sessions import Sessions

DAYS: Final = 90
HISTORY_DAYS: Final = 14
SPARK_HOURS: Final = 24
STATE_LABELS: Final = {
    "operational": "Operational",
    "degraded": "Degraded",
    "down": "Down",
    "maintenance": "Maintenance",
}
#: Worst first: the page's overall state is the worst of its checks'.
STATE_RANK: Final = ("down", "degraded", "maintenance", "operational")


@dataclass(frozen=True)
class Day:
    """One bar: a day's share of attempted runs that passed (``None``: no runs that day)."""

    day: date
    attempted: int
    passed: int

    @property
    def availability(self) -> float | None:
        """Percent of attempted runs that passed."""
        return round(100.0 * self.passed / self.attempted, 3) if self.attempted else None

    @property
    def level(self) -> str:
        """The bar's colour class."""
        value = self.availability
        if value is None:
            return "none"
        if value >= 99.9:
            return "ok"
        if value >= 99.0:
            return "minor"
        return "major" if value < 95.0 else "partial"

    def html(self) -> str:
        """The bar as HTML: a coloured span whose tooltip tells the day's figures."""
        value = self.availability
        data = f' data-availability="{value}"' if value is not None else ""
        return f'<span class="bar bar-{self.level}" title="{escape(self.title)}"{data}></span>'

    @property
    def title(self) -> str:
        """The bar's tooltip."""
        if self.availability is None:
            return f"{self.day.isoformat()}: no data"
        share = f"{self.availability:.2f} %"
        return f"{self.day.isoformat()}: {share} ({self.passed} of {self.attempted} runs passed)"


@dataclass
class Closed:
    """A check's closed days (oldest first), their HTML and their totals: fixed until tomorrow."""

    today: date
    bars: list[Day]
    html: str
    attempted: int
    passed: int


@dataclass
class DailyCache:
    """The closed days of each check, read and drawn once per check per day."""

    days: dict[uuid.UUID, Closed] = field(default_factory=dict)

    def missing(self, check_ids: Iterable[uuid.UUID], today: date) -> list[uuid.UUID]:
        """Checks whose closed days are not known up to yesterday."""
        return [cid for cid in check_ids if cid not in self.days or self.days[cid].today != today]

    def store(
        self, today: date, figures: dict[uuid.UUID, dict[date, tuple[int, int]]], ids: Iterable[uuid.UUID]
    ) -> None:
        """Keep the closed days read for ``ids`` (those with no runs get empty days)."""
        first = today - timedelta(days=DAYS - 1)
        for cid in ids:
            known = figures.get(cid, {})
            bars = [
                Day(first + timedelta(days=i), *known.get(first + timedelta(days=i), (0, 0)))
                for i in range(DAYS - 1)
            ]
            self.days[cid] = Closed(
                today,
                bars,
                "".join(day.html() for day in bars),
                sum(day.attempted for day in bars),
                sum(day.passed for day in bars),
            )

    def get(self, check_id: uuid.UUID) -> Closed | None:
        """The closed days of a check, if read."""
        return self.days.get(check_id)


def rollups_since(check_ids: Iterable[uuid.UUID], since: datetime) -> list[Any]:
    """WHERE terms for the rollups of ``check_ids`` from ``since``, naming every region so the
    (check, region, bucket) key is read as one short range per check and region instead of scanning
    each check's whole history for the bucket range."""
    return [
        RunRollup.check_id.in_(list(check_ids)),
        RunRollup.region.in_(list(REGIONS)),
        RunRollup.bucket >= since,
    ]


def _day_expr(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", RunRollup.bucket))
    return func.date(RunRollup.bucket)


async def daily(
    sessions: Sessions, check_ids: Sequence[uuid.UUID], *, now: datetime, cache: DailyCache
) -> dict[uuid.UUID, tuple[Closed, Day]]:
    """The last :data:`DAYS` days of each check: the closed ones (from ``cache``, read when missing)
    and today's (always read)."""
    today = now.date()
    first = today - timedelta(days=DAYS - 1)
    start_of_today = datetime.combine(today, datetime.min.time(), tzinfo=now.tzinfo)
    attempted = func.sum(RunRollup.total - RunRollup.missed)
    async with sessions() as session:
        missing = cache.missing(check_ids, today)
        if missing:
            day = _day_expr(session.get_bind().dialect.name)
            rows = await session.execute(
                select(RunRollup.check_id, day, attempted, func.sum(RunRollup.passed))
                .where(
                    *rollups_since(missing, datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)),
                    RunRollup.bucket < start_of_today,
                )
                .group_by(RunRollup.check_id, day)
            )
            figures: dict[uuid.UUID, dict[date, tuple[int, int]]] = {}
            for check_id, when, tried, passed in rows:
                when = when if isinstance(when, date) else date.fromisoformat(str(when))
                figures.setdefault(check_id, {})[when] = (int(tried or 0), int(passed or 0))
            cache.store(today, figures, missing)
        current = await session.execute(
            select(RunRollup.check_id, attempted, func.sum(RunRollup.passed))
            .where(*rollups_since(check_ids, start_of_today))
            .group_by(RunRollup.check_id)
        )
        today_figures = {cid: (int(t or 0), int(p or 0)) for cid, t, p in current}
    out: dict[uuid.UUID, tuple[Closed, Day]] = {}
    for cid in check_ids:
        closed = cache.get(cid)
        assert closed is not None
        out[cid] = (closed, Day(today, *today_figures.get(cid, (0, 0))))
    return out


async def sparklines(
    sessions: Sessions, check_ids: Sequence[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, list[float | None]]:
    """Mean response time (ms) per hour over the last :data:`SPARK_HOURS` hours, oldest first."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=SPARK_HOURS - 1)
    sums: dict[uuid.UUID, dict[datetime, tuple[float, int]]] = {}
    async with sessions() as session:
        rows = await session.execute(
            select(
                RunRollup.check_id,
                RunRollup.bucket,
                func.sum(RunRollup.sum_ms),
                func.sum(RunRollup.total - RunRollup.missed),
            )
            .where(*rollups_since(check_ids, first))
            .group_by(RunRollup.check_id, RunRollup.bucket)
        )
        for cid, bucket, sum_ms, count in rows:
            sums.setdefault(cid, {})[bucket] = (float(sum_ms or 0.0), int(count or 0))
    out = {}
    for cid in check_ids:
        hours = sums.get(cid, {})
        points: list[float | None] = []
        for i in range(SPARK_HOURS):
            total, count = hours.get(first + timedelta(hours=i), (0.0, 0))
            points.append(round(total / count, 1) if count else None)
        out[cid] = points
    return out


def spark_path(points: Sequence[float | None], *, width: float = 120.0, height: float = 24.0) -> str:
    """An SVG polyline ``points`` attribute for a sparkline (gaps skipped)."""
    values = [p for p in points if p is not None]
    if not values:
        return ""
    top = max(values) or 1.0
    step = width / max(len(points) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - (p / top) * (height - 2) - 1:.1f}"
        for i, p in enumerate(points)
        if p is not None
    )


def notice_threads(
    notices: Sequence[StatusNotice], now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Notices grouped into threads (same kind and title: later posts are updates of the first), newest
    first, split into active and past. An incident thread is active until an update says ``resolved``;
    a maintenance thread until one says ``completed`` or its window has ended."""
    threads: dict[tuple[str, str], list[StatusNotice]] = {}
    for notice in notices:
        threads.setdefault((notice.kind, notice.title.strip().lower()), []).append(notice)
    active: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    for posts in threads.values():
        latest = posts[0]
        window = next((p for p in posts if p.starts_at or p.ends_at), latest)
        thread = {
            "kind": latest.kind,
            "title": latest.title,
            "status": latest.status,
            "body": latest.body,
            "starts_at": window.starts_at,
            "ends_at": window.ends_at,
            "updated_at": latest.created_at,
            "earlier": [{"status": p.status, "body": p.body, "at": p.created_at} for p in posts[1:]],
        }
        if latest.kind == "incident":
            is_active = latest.status != "resolved"
        else:
            is_active = latest.status != "completed" and (window.ends_at is None or window.ends_at > now)
        (active if is_active else past).append(thread)
    return active, past


def check_state(
    *, region_count: int, incident: Incident | None, degraded: bool, in_maintenance: bool
) -> tuple[str, str]:
    """(state, why) of a check from the alert policy's view of it: an open incident failing in every
    region is ``down``, in some of them ``degraded``; the policy's degraded state (slow past its soft
    threshold) is ``degraded``; a maintenance window is ``maintenance``."""
    if in_maintenance:
        return "maintenance", "In a maintenance window"
    if incident is not None:
        regions = _regions(incident.failing_regions)
        if regions and len(regions) < region_count:
            names = ", ".join(display_name(r) for r in regions)
            return "degraded", f"Failing in {len(regions)} of {region_count} regions ({names})"
        return "down", "Failing in every region" if region_count > 1 else "Failing"
    if degraded:
        return "degraded", "Slower than usual"
    return "operational", ""


def _regions(items: Iterable[Any]) -> list[str]:
    out = []
    for item in items or []:
        code = item.get("region") if isinstance(item, dict) else item
        if isinstance(code, str) and code not in out:
            out.append(code)
    return out


def in_maintenance(spec: dict[str, Any], global_windows: Sequence[MaintenanceWindow], now: datetime) -> bool:
    """Whether one of the check's own or the global maintenance windows holds ``now``."""
    own = [MaintenanceWindow.model_validate(w) for w in spec.get("maintenance") or []]
    return any(window.contains(now) for window in (*own, *global_windows))


async def page_context(
    sessions: Sessions, page: StatusPage, *, now: datetime, cache: DailyCache
) -> dict[str, Any]:
    """Everything the public template needs, and nothing more."""
    store = StatusPageStore(sessions)
    groups: list[ResolvedGroup] = await store.resolve(page)
    ids = list(dict.fromkeys(c.check_id for g in groups for c in g.checks))
    async with sessions() as session:
        _, global_windows = await load_global(session)
        specs = (
            {
                cid: spec
                for cid, spec in await session.execute(select(Check.id, Check.spec).where(Check.id.in_(ids)))
            }
            if ids
            else {}
        )
        alert_states = (
            {
                cid: state
                for cid, state in await session.execute(
                    select(AlertState.check_id, AlertState.state).where(AlertState.check_id.in_(ids))
                )
            }
            if ids
            else {}
        )
        incidents = (
            list(
                (
                    await session.scalars(
                        select(Incident)
                        .where(
                            Incident.check_id.in_(ids),
                            or_(
                                Incident.state == "open",
                                Incident.opened_at >= now - timedelta(days=HISTORY_DAYS),
                            ),
                        )
                        .order_by(Incident.opened_at.desc())
                        .limit(50)
                    )
                ).all()
            )
            if ids
            else []
        )
        notices = list(
            (
                await session.scalars(
                    select(StatusNotice)
                    .where(StatusNotice.page_id == page.id)
                    .order_by(StatusNotice.created_at.desc(), StatusNotice.id)
                    .limit(30)
                )
            ).all()
        )
    bars = await daily(sessions, ids, now=now, cache=cache) if ids else {}
    sparks = await sparklines(sessions, ids, now=now) if ids else {}
    open_by_check = {i.check_id: i for i in incidents if i.state == "open"}
    names = {c.check_id: c.display_name for g in groups for c in g.checks}
    rendered_groups = []
    worst = "operational"
    for group in groups:
        rows = []
        for item in group.checks:
            spec = specs.get(item.check_id) or {}
            state, why = check_state(
                region_count=len(spec.get("regions") or []),
                incident=open_by_check.get(item.check_id),
                degraded=bool((alert_states.get(item.check_id) or {}).get("degraded")),
                in_maintenance=in_maintenance(spec, global_windows, now),
            )
            if STATE_RANK.index(state) < STATE_RANK.index(worst):
                worst = state
            closed, today = bars[item.check_id]
            attempted = closed.attempted + today.attempted
            passed = closed.passed + today.passed
            points = sparks.get(item.check_id, [])
            known = [p for p in points if p is not None]
            rows.append(
                {
                    "name": item.display_name,
                    "state": state,
                    "state_label": STATE_LABELS[state],
                    "why": why,
                    "bars": Markup(closed.html + today.html()),
                    "uptime": round(100.0 * passed / attempted, 2) if attempted else None,
                    "spark": spark_path(points),
                    "latest_ms": known[-1] if known else None,
                }
            )
        rendered_groups.append({"name": group.name, "checks": rows})

    def incident_row(row: Incident) -> dict[str, Any]:
        return {
            "check": names.get(row.check_id, "a service"),
            "state": row.state,
            "opened_at": row.opened_at,
            "resolved_at": row.resolved_at,
            "regions": [display_name(r) for r in _regions(row.failing_regions)],
        }

    active_notices, past_notices = notice_threads(notices, now)
    if worst == "operational" and any(
        thread["kind"] == "maintenance" and thread["starts_at"] is not None and thread["starts_at"] <= now
        for thread in active_notices
    ):
        worst = "maintenance"
    return {
        "page": {
            "title": page.title,
            "slug": page.slug,
            "logo_text": page.logo_text or page.title,
            "logo_colour": page.logo_colour or "#1f6feb",
        },
        "overall": worst,
        "overall_label": {
            "operational": "All systems operational",
            "degraded": "Some systems degraded",
            "down": "Major outage",
            "maintenance": "Maintenance in progress",
        }[worst],
        "groups": rendered_groups,
        "open_incidents": [incident_row(i) for i in incidents if i.state == "open"],
        "history": [incident_row(i) for i in incidents if i.state != "open"],
        "notices": active_notices,
        "past_notices": past_notices,
        "generated_at": now,
    }
