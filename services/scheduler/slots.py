"""Slot arithmetic: every process computes the same instants for a check, spread over its interval.

A check with interval ``I`` seconds and offset ``O = sha256(check_id) mod (I × 1000)`` milliseconds is due
at every whole millisecond ``t`` (counted from the Unix epoch) with ``t mod (I × 1000) == O``. Millisecond
offsets spread checks inside each second too: with whole seconds, 600 checks every 2 s fire 300 at the
same instant, and the runner's timings of a burst that size grow by tens of milliseconds. The offset
depends only on the check id and the interval, so a standby that takes over fires exactly the slots the
old leader would have fired, and the router's ``run_id`` (check, slot, region) makes a slot fired twice
a slot stored once.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH_0: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_PER_SECOND: Final = 1_000_000
_PER_MILLISECOND: Final = 1_000


def offset_of(check_id: uuid.UUID, interval: int) -> int:
    """The check's stable offset in whole milliseconds, in ``[0, interval × 1000)``.

    sha256 rather than ``hash()`` (salted per process) or the raw uuid (uuid1's low bits are a MAC).
    Raises ``ValueError`` for an interval below one second.
    """
    if interval < 1:
        raise ValueError(f"interval must be at least 1 s, got {interval}")
    digest = hashlib.sha256(check_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") % (interval * 1000)


def _micros(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("naive datetime: slots are computed on UTC instants")
    return (instant - EPOCH_0) // _MICROSECOND


def _instant(micros: int) -> datetime:
    return EPOCH_0 + timedelta(microseconds=micros)


def slot_at_or_after(check_id: uuid.UUID, interval: int, instant: datetime) -> datetime:
    """The first slot of the check at or after ``instant`` (aware), as an aware UTC datetime."""
    period = interval * _PER_SECOND
    offset = offset_of(check_id, interval) * _PER_MILLISECOND
    index = -(-(_micros(instant) - offset) // period)
    return _instant(index * period + offset)


def slot_at_or_before(check_id: uuid.UUID, interval: int, instant: datetime) -> datetime:
    """The last slot of the check at or before ``instant`` (aware), as an aware UTC datetime."""
    period = interval * _PER_SECOND
    offset = offset_of(check_id, interval) * _PER_MILLISECOND
    index = (_micros(instant) - offset) // period
    return _instant(index * period + offset)


def is_slot(check_id: uuid.UUID, interval: int, instant: datetime) -> bool:
    """Whether ``instant`` is one of the check's slots."""
    return slot_at_or_before(check_id, interval, instant) == instant


def slots_between(check_id: uuid.UUID, interval: int, after: datetime, until: datetime) -> list[datetime]:
    """The check's slots ``s`` with ``after < s <= until``, oldest first."""
    step = timedelta(seconds=interval)
    slot = slot_at_or_after(check_id, interval, after)
    if slot == after:
        slot += step
    slots = []
    while slot <= until:
        slots.append(slot)
        slot += step
    return slots
