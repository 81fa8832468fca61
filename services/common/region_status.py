"""What ``seymour region status`` shows: per region, the state of its links, what is buffered, its runners.

Home's view comes from home's management API (the federation buffer queues: one per connected region,
its depth = runs waiting to cross, a consumer = the link is up) and from the database (heartbeats).
A regional broker's own view (link states as it sees them, results waiting in its outbox) is added
when its address is given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from contracts.topology import CLUSTER_NAME_PREFIX, DEAD_RUNS_OUTBOX, RESULTS_OUTBOX, RUNS_EXCHANGE
from services.common.region_management import ManagementApi
from services.common.region_topology import q

#: ``federation: seymour.runs.<region> -> …`` (the region read from the exchange its account may read),
#: or a link made before regions had their own exchange: ``federation: seymour.runs -> seymour-<region>``.
_BUFFER = re.compile(
    rf"^federation: {re.escape(RUNS_EXCHANGE)}"
    rf"(?:\.([a-z0-9-]+) -> | -> {re.escape(CLUSTER_NAME_PREFIX)}([^:]+))"
)


@dataclass
class RegionRow:
    """One region's line of the status table (``None`` = not known from here)."""

    region: str
    runs_link: str | None = None
    buffered_runs: int | None = None
    results_link: str | None = None
    outbox_results: int | None = None
    outbox_dead_runs: int | None = None
    health: str | None = None
    runners: int = 0
    last_seen: str | None = None


def region_of_buffer(queue: str) -> str | None:
    """The region a home buffer queue serves, or ``None`` for any other queue."""
    match = _BUFFER.match(queue)
    return (match.group(1) or match.group(2)) if match else None


async def home_buffers(api: ManagementApi) -> dict[str, tuple[int, int]]:
    """Region → (runs buffered on home, link consumers) from the federation buffer queues on home."""
    queues = await api.get(f"/api/queues/{api.address.quoted_vhost}?columns=name,messages,consumers") or []
    found: dict[str, tuple[int, int]] = {}
    for queue in queues:
        region = region_of_buffer(str(queue.get("name", "")))
        if region is not None:
            found[region] = (int(queue.get("messages") or 0), int(queue.get("consumers") or 0))
    return found


async def region_side(api: ManagementApi) -> tuple[str | None, dict[str, Any]]:
    """The regional broker's own view: (its region from the cluster name, link states and outbox depths)."""
    vhost = api.address.quoted_vhost
    name = (await api.get("/api/cluster-name") or {}).get("name", "")
    region = name[len(CLUSTER_NAME_PREFIX) :] if name.startswith(CLUSTER_NAME_PREFIX) else None
    links = await api.get(f"/api/federation-links/{vhost}") or []
    shovels = await api.get(f"/api/shovels/{vhost}") or []
    depths = {}
    for queue in (RESULTS_OUTBOX, DEAD_RUNS_OUTBOX):
        info = await api.get(f"/api/queues/{vhost}/{q(queue)}")
        depths[queue] = None if info is None else int(info.get("messages") or 0)
    return region, {
        "runs_link": links[0].get("status") if links else "absent",
        "results_link": ",".join(sorted({str(s.get("state")) for s in shovels})) or "absent",
        "outbox_results": depths[RESULTS_OUTBOX],
        "outbox_dead_runs": depths[DEAD_RUNS_OUTBOX],
    }


def merge(
    buffers: dict[str, tuple[int, int]] | None,
    heartbeats: list[dict[str, Any]] | None,
    local: tuple[str | None, dict[str, Any]] | None,
) -> list[RegionRow]:
    """One row per region that home buffers for, that has runners, or that ``local`` is."""
    rows: dict[str, RegionRow] = {}

    def row(region: str) -> RegionRow:
        return rows.setdefault(region, RegionRow(region))

    for region, (messages, consumers) in (buffers or {}).items():
        entry = row(region)
        entry.buffered_runs = messages
        entry.runs_link = "up" if consumers else "down"
    for known in heartbeats or []:
        if not known.get("runners"):
            continue
        entry = row(str(known["code"]))
        entry.health = str(known["health"])
        entry.runners = len(known["runners"])
        entry.last_seen = max(str(r["last_seen"]) for r in known["runners"])
    if local is not None and local[0] is not None:
        entry = row(local[0])
        regional = local[1]
        if entry.runs_link is None:
            entry.runs_link = str(regional["runs_link"])
        entry.results_link = regional["results_link"]
        entry.outbox_results = regional["outbox_results"]
        entry.outbox_dead_runs = regional["outbox_dead_runs"]
    return [rows[name] for name in sorted(rows)]


COLUMNS = (
    ("REGION", "region"),
    ("RUNS LINK", "runs_link"),
    ("RUNS BUFFERED@HOME", "buffered_runs"),
    ("RESULTS LINK", "results_link"),
    ("RESULTS IN OUTBOX", "outbox_results"),
    ("DEAD RUNS IN OUTBOX", "outbox_dead_runs"),
    ("RUNNERS", "runners"),
    ("HEALTH", "health"),
    ("LAST HEARTBEAT", "last_seen"),
)


def render(rows: list[RegionRow]) -> str:
    """A plain-text table; ``-`` where a value is not known from here."""
    table = [[title for title, _ in COLUMNS]]
    for entry in rows:
        values = [getattr(entry, attr) for _, attr in COLUMNS]
        table.append(["-" if value is None else str(value) for value in values])
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in table
    )
