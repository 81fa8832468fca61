"""Read side of the API: runs and region health, as the API returns them (incidents: services.alerts)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, bindparam, or_, select

from contracts.v1.base import utcnow
from contracts.v1.regions import REGIONS, display_name
from services.common.db.models import Run, Runner
from services.common.db.sessions import Sessions
from services.common.errors import Invalid
from services.common.redaction import redact_request_record, redact_response_sample, redact_step


def run_view(row: Run) -> dict[str, Any]:
    """A run in the API's documented shape."""
    error = None
    if row.error_class:
        error = {"class": row.error_class, "message": row.error_message or ""}
    return {
        "run_id": str(row.run_id),
        "check_id": str(row.check_id),
        "region": row.region,
        "region_name": display_name(row.region),
        "slot": _iso(row.slot),
        "trigger": row.trigger,
        "status": row.status,
        "degraded": row.degraded,
        "started_at": _iso(row.started_at),
        "completed_at": _iso(row.completed_at),
        "response": redact_response_sample(row.response),
        "timings": row.timings or {},
        "error": error,
        "assertions": row.assertions or [],
        "request": redact_request_record(row.request),
        "runner_id": row.runner_id,
        "steps": [redact_step(step) for step in row.steps] if row.steps else row.steps,
        "failed_step": row.failed_step,
        "certificate": row.certificate,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


Cursor = tuple[datetime, uuid.UUID]


def run_cursor(run: Run) -> str:
    """Where a page of runs ends, as ``before``/``after`` take it: the run's completion time and id."""
    return f"{_iso(run.completed_at)}~{run.run_id}"


def parse_cursor(value: str | None, field: str) -> Cursor | None:
    """A cursor from :func:`run_cursor`; 422 naming ``field`` when it is not one."""
    if not value:
        return None
    try:
        stamp, run_id = value.split("~", 1)
        instant = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError("no time zone")
        return instant, uuid.UUID(run_id)
    except ValueError:
        raise Invalid(
            f"bad {field} cursor", [{"field": field, "message": "a cursor from a runs page link"}]
        ) from None


async def list_runs(
    sessions: Sessions,
    check_id: uuid.UUID,
    *,
    limit: int,
    offset: int = 0,
    region: str | None = None,
    status: str | None = None,
    before: Cursor | None = None,
    after: Cursor | None = None,
) -> list[Run]:
    """Runs of a check, newest first (ties broken by id, so pages are stable).

    ``before``/``after`` (keyset pagination) start the page just older/newer than a cursor: the index
    is entered at the cursor, so page 1,000 costs what page 1 does, where ``offset`` walks every run it
    skips."""
    query = select(Run).where(Run.check_id == check_id)
    if region:
        query = query.where(Run.region == region)
    if status:
        statuses = [part for part in status.split(",") if part]
        # Written into the statement, not bound: only then can PostgreSQL tell that ``status IN
        # ('failed', 'error')`` implies the partial index's ``status <> 'passed'`` in every plan it
        # caches, and read ``ix_runs_check_not_passed`` instead of every run of the check.
        listed: BindParameter[list[str]] = bindparam(
            "statuses", statuses, expanding=True, literal_execute=True
        )
        query = query.where(Run.status.in_(listed))
    newest_first = after is None
    if before is not None:
        at, run_id = before
        query = query.where(Run.completed_at <= at, or_(Run.completed_at < at, Run.run_id < run_id))
    if after is not None:
        at, run_id = after
        query = query.where(Run.completed_at >= at, or_(Run.completed_at > at, Run.run_id > run_id))
    if newest_first:
        query = query.order_by(Run.completed_at.desc(), Run.run_id.desc())
    else:
        query = query.order_by(Run.completed_at, Run.run_id)
    query = query.limit(limit).offset(offset)
    async with sessions() as session:
        rows = list((await session.execute(query)).scalars().all())
    return rows if newest_first else rows[::-1]


async def get_run(sessions: Sessions, run_id: uuid.UUID) -> Run | None:
    """One run by id."""
    async with sessions() as session:
        row: Run | None = await session.get(Run, run_id)
    return row


def runner_health(last_seen: datetime, *, now: datetime, stale_after: float, dead_after: float) -> str:
    """live / stale / dead from the age of a runner's last heartbeat."""
    age = (now - last_seen).total_seconds()
    if age <= stale_after:
        return "live"
    return "stale" if age <= dead_after else "dead"


async def regions(sessions: Sessions, *, stale_after: float, dead_after: float) -> list[dict[str, Any]]:
    """Every known region with its runners and overall health (``none`` = never had a runner)."""
    now = utcnow()
    async with sessions() as session:
        runners = (await session.execute(select(Runner))).scalars().all()
    by_region: dict[str, list[dict[str, Any]]] = {}
    for runner in runners:
        if (now - runner.last_seen) > timedelta(days=7):
            continue
        by_region.setdefault(runner.region, []).append(
            {
                "runner_id": runner.runner_id,
                "version": runner.version,
                "capacity": runner.capacity,
                "in_flight": runner.in_flight,
                "started_at": _iso(runner.started_at),
                "last_seen": _iso(runner.last_seen),
                "health": runner_health(
                    runner.last_seen, now=now, stale_after=stale_after, dead_after=dead_after
                ),
            }
        )
    out = []
    rank = {"live": 0, "stale": 1, "dead": 2}
    for code in [*REGIONS, *sorted(set(by_region) - set(REGIONS))]:
        members = by_region.get(code, [])
        health = min((r["health"] for r in members), key=rank.__getitem__, default="none")
        out.append(
            {
                "code": code,
                "name": display_name(code),
                "health": health,
                "live": health == "live",
                "runners": members,
            }
        )
    return out
