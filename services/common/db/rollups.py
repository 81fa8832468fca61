"""Hourly rollups of runs: counts and a log-spaced latency histogram per check × region × hour.

Summaries over 7 or 30 days read at most 720 rollup rows per region instead of every run; p50/p95 come
from the histogram (accurate to a bucket, interpolated inside it).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

#: Upper bounds of latency buckets in ms; the last bucket is everything slower.
BOUNDS_MS: Final = (
    1,
    2,
    3,
    5,
    7,
    10,
    15,
    20,
    30,
    40,
    50,
    75,
    100,
    150,
    200,
    250,
    300,
    400,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    5000,
    7500,
    10000,
    15000,
    20000,
    30000,
    60000,
    120000,
)


#: The plain counters of a rollup (besides its histogram).
COUNTERS: Final = ("total", "responded", "passed", "failed", "errors", "missed", "sum_ms")


def bucket_of(ms: float) -> str:
    """The histogram key (upper bound, as a string for JSON) of a latency."""
    index = bisect.bisect_left(BOUNDS_MS, ms)
    return str(BOUNDS_MS[index]) if index < len(BOUNDS_MS) else "inf"


def hour_of(instant: datetime) -> datetime:
    """The start of the hour holding ``instant``."""
    return instant.replace(minute=0, second=0, microsecond=0)


def empty() -> dict[str, Any]:
    """A rollup with nothing in it."""
    return {
        "total": 0,
        "responded": 0,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "missed": 0,
        "sum_ms": 0.0,
        "latency_hist": {},
    }


def add_run(rollup: dict[str, Any], status: str, total_ms: float | None, responded: bool) -> None:
    """Count one run into ``rollup`` (in place)."""
    rollup["total"] += 1
    key = {"passed": "passed", "failed": "failed", "error": "errors", "missed": "missed"}[status]
    rollup[key] += 1
    if responded:
        rollup["responded"] += 1
    if total_ms is not None and status != "missed":
        rollup["sum_ms"] += total_ms
        hist = rollup["latency_hist"]
        bucket = bucket_of(total_ms)
        hist[bucket] = hist.get(bucket, 0) + 1


def merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Add ``other``'s counts to ``into`` (in place)."""
    for key in COUNTERS:
        into[key] += other.get(key) or 0
    hist = into["latency_hist"]
    for bucket, count in (other.get("latency_hist") or {}).items():
        hist[bucket] = hist.get(bucket, 0) + count


def percentile(hist: Mapping[str, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, interpolated linearly within its bucket."""
    total = sum(hist.values())
    if total == 0:
        return None
    rank = q * total
    seen = 0.0
    lower = 0.0
    for bound in (*BOUNDS_MS, "inf"):
        count = hist.get(str(bound), 0)
        upper = float(bound) if bound != "inf" else float(BOUNDS_MS[-1]) * 2
        if count and seen + count >= rank:
            return lower + (upper - lower) * ((rank - seen) / count)
        seen += count
        lower = upper
    return float(BOUNDS_MS[-1])


def exact_percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q`` quantile of raw values (nearest-rank with linear interpolation)."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
