"""Summaries and chart series of a check, and the latest runs of many checks, from indexed reads.

Short windows read raw runs through ``ix_runs_check_completed`` (exact percentiles); long ones read the
hourly ``run_rollups`` (at most 24 × 30 rows per region for 30 days), so no page ever loads all runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Uuid,
    and_,
    any_,
    bindparam,
    cast,
    func,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute

from contracts.v1.base import utcnow
from contracts.v1.regions import display_name
from services.common.db import rollups
from services.common.db.models import Check, CheckTag, Incident, Run, RunRollup
from services.common.db.sessions import Sessions
from services.common.errors import Invalid

WINDOWS: Final[dict[str, timedelta]] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_WINDOW: Final = "24h"
#: Terms per ``UNION ALL`` (SQLite's limit on a compound select is 500).
_UNION_TERMS: Final = 400
#: Above this many expected runs in a window, read hourly rollups instead of raw runs. At 10M runs a
#: 24-hour raw read of a one-minute check in three regions (4,320 runs) was the slowest part of the
#: check page; 1,500 keeps the last hour of checks down to every 10 s raw and exact.
MAX_RAW_RUNS: Final = 1500


def window_of(name: str) -> timedelta:
    """The length of a named window; 422 for an unknown one."""
    try:
        return WINDOWS[name]
    except KeyError:
        raise Invalid(
            f"unknown window '{name}'",
            [{"field": "window", "message": f"one of {', '.join(WINDOWS)}"}],
        ) from None


def uses_raw_runs(window: timedelta, interval: float, region_count: int) -> bool:
    """Whether a window is small enough (in expected runs) to read raw runs."""
    expected = window.total_seconds() / max(interval, 1.0) * max(region_count, 1)
    return expected <= MAX_RAW_RUNS


def _pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 2) if whole else None


def _stats(counts: dict[str, Any], p50: float | None, p95: float | None) -> dict[str, Any]:
    """Counts → what the UI shows. Availability: share of attempted runs that got any HTTP response;
    pass rate: share of attempted runs whose every assertion held (missed runs were never attempted)."""
    attempted = counts["total"] - counts["missed"]
    return {
        "total": counts["total"],
        "responded": counts["responded"],
        "passed": counts["passed"],
        "failed": counts["failed"],
        "errors": counts["errors"],
        "missed": counts["missed"],
        "failures": counts["failed"] + counts["errors"],
        "availability": _pct(counts["responded"], attempted),
        "pass_rate": _pct(counts["passed"], attempted),
        "p50_ms": round(p50, 1) if p50 is not None else None,
        "p95_ms": round(p95, 1) if p95 is not None else None,
    }


async def summary(
    sessions: Sessions,
    check_id: uuid.UUID,
    *,
    window: str,
    interval: float,
    regions: Sequence[str],
    now: datetime | None = None,
) -> dict[str, Any]:
    """Availability, pass rate, failures, p50 and p95 over ``window``: overall and per region."""
    length = window_of(window)
    since = (now or utcnow()) - length
    raw = uses_raw_runs(length, interval, len(regions))
    per_region: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    async with sessions() as session:
        if raw:
            rows = await session.execute(
                select(Run.region, Run.status, Run.total_ms, Run.status_code).where(
                    Run.check_id == check_id, Run.completed_at >= since
                )
            )
            for region, status, total_ms, status_code in rows:
                counts = per_region.setdefault(region, rollups.empty())
                rollups.add_run(counts, status, total_ms, status_code is not None)
                if total_ms is not None and status != "missed":
                    latencies.setdefault(region, []).append(total_ms)
        else:
            per_region = await _rollup_totals(session, check_id, rollups.hour_of(since))
    overall = rollups.empty()
    region_stats = []
    for region in [*regions, *sorted(set(per_region) - set(regions))]:
        counts = per_region.get(region, rollups.empty())
        rollups.merge(overall, counts)
        region_stats.append(
            {
                "region": region,
                "name": display_name(region),
                **_percentiles(counts, latencies.get(region), raw),
            }
        )
    all_latencies = [ms for values in latencies.values() for ms in values]
    return {
        "window": window,
        "since": since.isoformat().replace("+00:00", "Z"),
        "source": "runs" if raw else "rollups",
        "overall": _percentiles(overall, all_latencies, raw),
        "regions": region_stats,
    }


async def _rollup_totals(session: Any, check_id: uuid.UUID, since: datetime) -> dict[str, dict[str, Any]]:
    """Per region, the sum of a check's hourly rollups from ``since`` on, histograms merged, added up
    by the database: a week is 504 rows, and decoding and merging each one's histogram in Python was
    half of the check page's time."""
    window = (RunRollup.check_id == check_id, RunRollup.bucket >= since)
    counters = [func.sum(getattr(RunRollup, name)) for name in rollups.COUNTERS]
    out: dict[str, dict[str, Any]] = {}
    for region, *sums in await session.execute(
        select(RunRollup.region, *counters).where(*window).group_by(RunRollup.region)
    ):
        counts = rollups.empty()
        for name, value in zip(rollups.COUNTERS, sums, strict=True):
            counts[name] = (
                (float(value) if name == "sum_ms" else int(value)) if value is not None else counts[name]
            )
        out[region] = counts
    if not out:
        return out
    dialect = session.bind.dialect.name if session.bind is not None else ""
    each = (
        func.json_each_text(RunRollup.latency_hist)
        if dialect == "postgresql"
        else func.json_each(RunRollup.latency_hist)
    ).table_valued("key", "value", name="hist")
    buckets = (
        select(RunRollup.region, each.c.key, func.sum(cast(each.c.value, BigInteger)))
        .select_from(RunRollup)
        .join(each, true())
        .where(*window)
        .group_by(RunRollup.region, each.c.key)
    )
    for region, key, count in await session.execute(buckets):
        if count:
            out[region]["latency_hist"][key] = int(count)
    return out


def _percentiles(counts: dict[str, Any], values: list[float] | None, raw: bool) -> dict[str, Any]:
    if raw:
        values = values or []
        return _stats(counts, rollups.exact_percentile(values, 0.5), rollups.exact_percentile(values, 0.95))
    hist = counts["latency_hist"]
    return _stats(counts, rollups.percentile(hist, 0.5), rollups.percentile(hist, 0.95))


async def chart(
    sessions: Sessions,
    check_id: uuid.UUID,
    *,
    window: str,
    interval: float,
    regions: Sequence[str],
    now: datetime | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """Response time per region over ``window``: one point per run (``failed`` = 1 when the run did not
    pass) when the window is small, else one point per hour (mean latency, ``failed`` = failures).
    With ``step``, the time of that step of a multi-step check, one point per run (the latest
    ``STEP_POINTS`` runs of the window: rollups keep only the total)."""
    length = window_of(window)
    since = (now or utcnow()) - length
    if step:
        return await _step_chart(sessions, check_id, window, since, regions, step)
    raw = uses_raw_runs(length, interval, len(regions))
    series: dict[str, dict[str, list[Any]]] = {
        region: {"t": [], "ms": [], "failed": []} for region in regions
    }
    async with sessions() as session:
        if raw:
            rows = await session.execute(
                select(Run.region, Run.completed_at, Run.total_ms, Run.status)
                .where(Run.check_id == check_id, Run.completed_at >= since)
                .order_by(Run.completed_at, Run.run_id)
            )
            for region, completed_at, total_ms, status in rows:
                points = series.setdefault(region, {"t": [], "ms": [], "failed": []})
                points["t"].append(round(completed_at.timestamp(), 3))
                points["ms"].append(round(total_ms, 2) if total_ms is not None else None)
                points["failed"].append(0 if status == "passed" else 1)
        else:
            rollup_rows = await session.execute(
                select(
                    RunRollup.region,
                    RunRollup.bucket,
                    RunRollup.sum_ms,
                    RunRollup.latency_hist,
                    RunRollup.failed,
                    RunRollup.errors,
                    RunRollup.missed,
                )
                .where(RunRollup.check_id == check_id, RunRollup.bucket >= rollups.hour_of(since))
                .order_by(RunRollup.bucket)
            )
            for region, bucket, sum_ms, hist, failed, errors, missed in rollup_rows:
                points = series.setdefault(region, {"t": [], "ms": [], "failed": []})
                measured = sum((hist or {}).values())
                points["t"].append(bucket.timestamp())
                points["ms"].append(round(sum_ms / measured, 2) if measured else None)
                points["failed"].append(failed + errors + missed)
    return {
        "window": window,
        "resolution": "run" if raw else "hour",
        "series": [
            {"region": region, "name": display_name(region), **points} for region, points in series.items()
        ],
    }


#: A per-step chart reads raw runs: at most this many, the latest of the window.
STEP_POINTS = 5000


async def _step_chart(
    sessions: Any, check_id: uuid.UUID, window: str, since: datetime, regions: Sequence[str], step: str
) -> dict[str, Any]:
    series: dict[str, dict[str, list[Any]]] = {
        region: {"t": [], "ms": [], "failed": []} for region in regions
    }
    async with sessions() as session:
        rows = await session.execute(
            select(Run.region, Run.completed_at, Run.steps)
            .where(Run.check_id == check_id, Run.completed_at >= since, Run.steps.is_not(None))
            .order_by(Run.completed_at.desc(), Run.run_id)
            .limit(STEP_POINTS)
        )
        found = list(rows)
    for region, completed_at, steps in reversed(found):
        outcome = next((item for item in steps or [] if item.get("name") == step), None)
        if outcome is None:
            continue
        total = (outcome.get("timings") or {}).get("total_ms")
        points = series.setdefault(region, {"t": [], "ms": [], "failed": []})
        points["t"].append(round(completed_at.timestamp(), 3))
        points["ms"].append(round(total, 2) if isinstance(total, int | float) else None)
        points["failed"].append(0 if outcome.get("status") == "passed" else 1)
    return {
        "window": window,
        "resolution": "run",
        "step": step,
        "series": [
            {"region": region, "name": display_name(region), **points} for region, points in series.items()
        ],
    }


class RunMark(NamedTuple):
    """Enough of a run to draw its coloured mark and its line in a short table (a tuple: a page of
    1,000 checks makes 3,000 of them, and a frozen dataclass set each field through
    ``object.__setattr__``)."""

    run_id: uuid.UUID
    check_id: uuid.UUID
    region: str
    status: str
    total_ms: float | None
    status_code: int | None
    completed_at: datetime
    assertions_passed: int
    assertions_total: int
    error_class: str | None

    @property
    def region_name(self) -> str:
        """The region's display name."""
        return display_name(self.region)


_MARK_COLUMNS: Final = (
    Run.run_id,
    Run.check_id,
    Run.region,
    Run.status,
    Run.total_ms,
    Run.status_code,
    Run.completed_at,
    Run.assertions_passed,
    Run.assertions_total,
    Run.error_class,
)


async def latest_runs(
    sessions: Sessions, check_ids: Iterable[uuid.UUID], *, per_check: int = 3
) -> dict[uuid.UUID, list[RunMark]]:
    """The newest ``per_check`` runs of each stored check in ``check_ids``, newest first, in one
    statement whose cost grows with the number of checks, never with the number of runs.

    PostgreSQL gets a ``LATERAL`` join: per check, an index scan of ``ix_runs_check_completed`` backwards
    that stops after ``per_check`` rows. (A correlated ``run_id IN (… LIMIT n)`` is planned there as a
    sequential scan of every run, running the subquery once per run.) SQLite has no ``LATERAL``, and with
    statistics it planned that correlated form as a scan of runs too: it gets a ``UNION ALL`` of one
    ``LIMIT`` read per check instead, each a search of the same index."""
    ids = list(check_ids)
    out: dict[uuid.UUID, list[RunMark]] = {check_id: [] for check_id in ids}
    if not ids:
        return out
    async with sessions() as session:
        for row in await _latest(session, ids, per_check, _MARK_COLUMNS):
            out[row.check_id].append(RunMark(*row))
    for marks in out.values():
        marks.sort(key=lambda mark: (mark.completed_at, mark.run_id), reverse=True)
    return out


async def _latest(
    session: Any, ids: Sequence[uuid.UUID], per_check: int, columns: Sequence[Any]
) -> list[Any]:
    """Rows of ``columns`` of the newest ``per_check`` runs of each check (``check_id`` among them)."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    statements = (
        [_latest_lateral(ids, per_check, columns)]
        if dialect == "postgresql"
        else _latest_union(ids, per_check, columns)
    )
    return [row for statement in statements for row in await session.execute(statement)]


def one_of(
    column: ColumnElement[Any] | InstrumentedAttribute[Any], ids: Sequence[uuid.UUID], dialect: str
) -> ColumnElement[bool]:
    """``column`` is one of ``ids``: on PostgreSQL ``= ANY(:ids)`` with the ids as one array parameter.
    An ``IN`` list is compiled into one bind parameter per id for every statement; for a page of 1,000
    checks that compiling, and encoding 1,000 parameters, cost more CPU than the rows read."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Uuid())))
    return column.in_(ids)


def _latest_lateral(
    ids: Sequence[uuid.UUID], per_check: int, columns: Sequence[Any] = _MARK_COLUMNS
) -> Executable:
    recent = (
        select(*columns)
        .where(Run.check_id == Check.id)
        .order_by(Run.completed_at.desc(), Run.run_id.desc())
        .limit(per_check)
        .lateral("recent")
    )
    return (
        select(*recent.c).select_from(Check).join(recent, true()).where(one_of(Check.id, ids, "postgresql"))
    )


def _latest_union(
    ids: Sequence[uuid.UUID], per_check: int, columns: Sequence[Any] = _MARK_COLUMNS
) -> list[Executable]:
    """One ``UNION ALL`` of per-check ``LIMIT`` reads per chunk of ids (SQLite allows 500 terms)."""
    statements: list[Executable] = []
    for start in range(0, len(ids), _UNION_TERMS):
        terms = [
            select(*recent.c)
            for recent in (
                select(*columns)
                .where(Run.check_id == check_id)
                .order_by(Run.completed_at.desc(), Run.run_id.desc())
                .limit(per_check)
                .subquery()
                for check_id in ids[start : start + _UNION_TERMS]
            )
        ]
        statements.append(union_all(*terms) if len(terms) > 1 else terms[0])
    return statements


#: What a line of the checks table is drawn from, as one text: the check's id, revision (every change to
#: a check stores a new one) and enabled flag, its newest runs' ids, statuses and times, and its open
#: incident's id and opening time. One text rather than a tuple of them: a 1,000-line page hashes,
#: compares and fingerprints 1,000 of these on every poll.
RowVersion = str


def row_version(
    check_id: uuid.UUID,
    revision: int,
    enabled: bool,
    marks: Iterable[tuple[uuid.UUID, str, datetime]],
    incident: tuple[uuid.UUID, datetime] | None,
) -> RowVersion:
    """The version of one line of the checks table (``marks`` newest first), for SQLite; PostgreSQL
    works out the same kind of text itself (:data:`_PG_VERSIONS`)."""
    runs = ",".join(f"{run_id}:{status}:{at.isoformat()}" for run_id, status, at in marks)
    opened = f"{incident[0]}@{incident[1].isoformat()}" if incident is not None else ""
    return f"{check_id}/{revision}/{str(enabled).lower()}/{runs}/{opened}"


_KEY_COLUMNS: Final = (Run.check_id, Run.run_id, Run.status, Run.completed_at)


#: One page of the checks table with the version of each line, worked out by PostgreSQL: the page's ids
#: first (so the per-check reads run for the page only, not for every skipped check), each with its open
#: incident and its newest runs folded into one text. Python then handles one short row per check
#: instead of three decoded runs (uuids, timestamps) per check: for 1,000 checks that decoding was most
#: of the page's CPU. A run is named by its id and status (what it shows never changes under those), in
#: the order the index on (check_id, completed_at) gives: sorting by a tie-breaker and formatting times
#: took half the statement (10 M runs, 1,000 lines: 18–40 ms → 10 ms). Two runs completed in the same
#: microsecond could only ever swap places in the text, and that costs a redraw, not a wrong line.
_PG_VERSIONS: Final = """
SELECT page.id,
       page.id::text || '/' || page.revision || '/' || page.enabled || '/' || coalesce(m.marks, '') || '/'
           || coalesce(i.id::text || '@' || extract(epoch FROM i.opened_at)::text, '') AS version,
       (SELECT count(*) FROM checks {where}) AS total
FROM (
    SELECT id, name, revision, enabled FROM checks {where} ORDER BY name, id LIMIT :limit OFFSET :offset
) AS page
LEFT JOIN incidents AS i ON i.check_id = page.id AND i.state = 'open'
LEFT JOIN LATERAL (
    SELECT string_agg(r.run_id::text || ':' || r.status, ',') AS marks
    FROM (
        SELECT run_id, status FROM runs WHERE runs.check_id = page.id
        ORDER BY completed_at DESC LIMIT :per_check
    ) AS r
) AS m ON true
ORDER BY page.name, page.id
"""
_TAGGED: Final = "WHERE id IN (SELECT check_id FROM check_tags WHERE tag = :tag)"


async def table_versions(
    sessions: Sessions, *, limit: int, offset: int, tag: str | None = None, per_check: int = 3
) -> tuple[int, list[tuple[uuid.UUID, RowVersion]]]:
    """How many checks there are (tagged ``tag`` when given) and, for each line of one page of the
    checks table, its check's id and the line's version: what a poll needs to tell whether the table
    changed, and what drawn lines are kept by, without loading specs or run details. One statement on
    PostgreSQL; on SQLite two (the page with incidents and count, then the newest runs)."""
    async with sessions() as session:
        dialect = session.bind.dialect.name if session.bind is not None else ""
        if dialect == "postgresql":
            statement = text(_PG_VERSIONS.format(where=_TAGGED if tag else ""))
            params: dict[str, Any] = {"limit": limit, "offset": offset, "per_check": per_check}
            if tag:
                params["tag"] = tag
            found = (await session.execute(statement, params)).all()
            if not found:
                return int((await session.execute(_count(tag))).scalar_one()), []
            return int(found[0][2]), [(check_id, version) for check_id, version, _ in found]
        return await _sqlite_versions(session, limit, offset, tag, per_check)


def _count(tag: str | None) -> Any:
    count = select(func.count()).select_from(Check)
    if tag:
        count = count.where(Check.id.in_(select(CheckTag.check_id).where(CheckTag.tag == tag)))
    return count


async def _sqlite_versions(
    session: Any, limit: int, offset: int, tag: str | None, per_check: int
) -> tuple[int, list[tuple[uuid.UUID, RowVersion]]]:
    count = _count(tag)
    page = select(
        Check.id, Check.revision, Check.enabled, Incident.id.label("incident_id"), Incident.opened_at
    ).outerjoin(Incident, and_(Incident.check_id == Check.id, Incident.state == "open"))
    if tag:
        page = page.where(Check.id.in_(select(CheckTag.check_id).where(CheckTag.tag == tag)))
    page = page.add_columns(count.scalar_subquery().label("total"))
    rows = list(await session.execute(page.order_by(Check.name, Check.id).limit(limit).offset(offset)))
    total = rows[0].total if rows else (await session.execute(count)).scalar_one()
    marks: dict[uuid.UUID, list[tuple[uuid.UUID, str, datetime]]] = {row.id: [] for row in rows}
    if rows:
        for check_id, run_id, status, completed_at in await _latest(
            session, list(marks), per_check, _KEY_COLUMNS
        ):
            marks[check_id].append((run_id, status, completed_at))
    for values in marks.values():
        values.sort(key=lambda mark: (mark[2], mark[0]), reverse=True)
    return int(total), [
        (
            row.id,
            row_version(
                row.id,
                row.revision,
                row.enabled,
                marks[row.id],
                (row.incident_id, row.opened_at) if row.incident_id is not None else None,
            ),
        )
        for row in rows
    ]


@dataclass(frozen=True, slots=True)
class TableCheck:
    """What a line of the checks table shows of a check: its identity and the few fields of its spec
    read out by the database (a 1,000-line page no longer decodes 1,000 whole specs)."""

    id: uuid.UUID
    name: str
    enabled: bool
    revision: int
    spec: dict[str, Any]


async def table_rows(sessions: Sessions, check_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TableCheck]:
    """The checks of ``check_ids`` (those still stored) as lines of the checks table show them: only
    the lines that must be drawn afresh are read."""
    if not check_ids:
        return {}
    spec = Check.spec
    async with sessions() as session:
        dialect = session.bind.dialect.name if session.bind is not None else ""
        rows = await session.execute(
            select(
                Check.id,
                Check.name,
                Check.enabled,
                Check.revision,
                spec["request"]["method"].as_string(),
                spec["request"]["url"].as_string(),
                spec["interval"].as_float(),
                spec["regions"],
                spec["tags"],
            ).where(one_of(Check.id, check_ids, dialect))
        )
    out = {}
    for check_id, name, enabled, revision, method, url, interval, regions, tags in rows:
        request = {key: value for key, value in (("method", method), ("url", url)) if value is not None}
        fields: dict[str, Any] = {"request": request, "regions": regions or [], "tags": tags or []}
        if interval is not None:
            fields["interval"] = int(interval) if float(interval).is_integer() else interval
        out[check_id] = TableCheck(check_id, name, enabled, revision, fields)
    return out


async def open_incidents(sessions: Sessions, check_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Incident]:
    """The open incident of each of ``check_ids`` that has one."""
    ids = list(check_ids)
    if not ids:
        return {}
    async with sessions() as session:
        dialect = session.bind.dialect.name if session.bind is not None else ""
        rows = await session.execute(
            select(Incident).where(Incident.state == "open", one_of(Incident.check_id, ids, dialect))
        )
        return {row.check_id: row for (row,) in rows}
