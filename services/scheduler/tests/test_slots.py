"""Slots: stable per-check offsets, spread over the interval, the same in every process."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.scheduler.jobs import SlotTrigger
from services.scheduler.slots import EPOCH_0, is_slot, offset_of, slot_at_or_after, slot_at_or_before

ZERO = uuid.UUID("00000000-0000-0000-0000-000000000000")
SOME = uuid.UUID("6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6")
ONES = uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff")


@pytest.mark.parametrize(
    ("check_id", "interval", "offset"),
    [
        (ZERO, 1, 69),
        (ZERO, 60, 54069),
        (SOME, 60, 31056),
        (SOME, 300, 151056),
        (SOME, 3600, 3451056),
        (ONES, 60, 24777),
        (ONES, 3600, 864777),
    ],
    ids=["1s", "zero-60", "some-60", "some-300", "some-3600", "ones-60", "ones-3600"],
)
def test_offsets_are_pinned(check_id: uuid.UUID, interval: int, offset: int) -> None:
    # Pinned values: a release that moved them would fire different slots than the one it replaces.
    assert offset_of(check_id, interval) == offset


def test_offsets_are_the_same_in_another_process_with_another_hash_seed() -> None:
    ids = [uuid.UUID(int=random.Random(7).getrandbits(128) + n) for n in range(20)]
    script = (
        "import sys, uuid\n"
        "from services.scheduler.slots import offset_of\n"
        "print(','.join(str(offset_of(uuid.UUID(a), 300)) for a in sys.argv[1:]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, ids)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[3]),
    )
    assert out.stdout.strip() == ",".join(str(offset_of(check_id, 300)) for check_id in ids)


@pytest.mark.parametrize("interval", [10, 60, 300], ids=["10s", "1min", "5min"])
def test_checks_are_spread_over_their_interval(interval: int) -> None:
    rng = random.Random(interval)
    checks = 50 * interval
    offsets = [offset_of(uuid.UUID(int=rng.getrandbits(128)), interval) for _ in range(checks)]
    per_second = Counter(offset // 1000 for offset in offsets)
    assert set(per_second) == set(range(interval)), "every second of the interval gets some checks"
    assert max(per_second.values()) < 50 * 2, "no second gets twice its share"
    per_tenth = Counter(offset // 100 for offset in offsets)
    assert len(per_tenth) > 0.95 * interval * 10, "inside a second, checks are spread too"
    assert max(per_tenth.values()) < 5 * 5, "no tenth of a second gets five times its share"


@pytest.mark.parametrize(
    ("instant", "interval"),
    [
        (datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC), 60),
        (datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=UTC), 60),
        (datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC), 300),
        (datetime(2031, 1, 1, tzinfo=UTC), 7 * 24 * 3600),
        (datetime(2024, 5, 1, 12, 0, 0, 500000, tzinfo=UTC), 1),
    ],
    ids=["whole-minute", "one-microsecond-later", "end-of-day", "weekly", "every-second"],
)
@pytest.mark.parametrize("check_id", [ZERO, SOME, ONES], ids=["zero", "some", "ones"])
def test_slots_are_whole_milliseconds_on_the_checks_offset(
    check_id: uuid.UUID, instant: datetime, interval: int
) -> None:
    after = slot_at_or_after(check_id, interval, instant)
    before = slot_at_or_before(check_id, interval, instant)
    for slot in (after, before):
        assert slot.tzinfo is not None
        assert slot.microsecond % 1000 == 0
        millis = (slot - EPOCH_0) // timedelta(milliseconds=1)
        assert millis % (interval * 1000) == offset_of(check_id, interval)
        assert is_slot(check_id, interval, slot)
    assert before <= instant <= after
    assert after - before in (timedelta(0), timedelta(seconds=interval))
    assert after - instant < timedelta(seconds=interval)


def test_an_instant_on_a_slot_is_its_own_slot() -> None:
    slot = slot_at_or_after(SOME, 60, datetime(2024, 5, 1, tzinfo=UTC))
    assert slot_at_or_after(SOME, 60, slot) == slot == slot_at_or_before(SOME, 60, slot)
    assert not is_slot(SOME, 60, slot + timedelta(seconds=1))
    assert not is_slot(SOME, 60, slot + timedelta(milliseconds=1))


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: offset_of(SOME, 0), "interval"),
        (lambda: slot_at_or_after(SOME, 60, datetime(2024, 5, 1)), "naive"),
    ],
    ids=["zero-interval", "naive-datetime"],
)
def test_bad_input_is_refused(call: object, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        call()  # type: ignore[operator]


NOW = datetime(2024, 5, 1, 12, 0, 30, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("previous", "expected"),
    [
        (None, slot_at_or_after(SOME, 10, NOW)),
        (slot_at_or_before(SOME, 10, NOW), slot_at_or_before(SOME, 10, NOW) + timedelta(seconds=10)),
        (slot_at_or_before(SOME, 10, NOW) - timedelta(hours=1), slot_at_or_before(SOME, 10, NOW)),
    ],
    ids=["first", "after-a-firing", "after-an-hour-paused-jumps-to-latest"],
)
def test_trigger_yields_the_checks_slots(previous: datetime | None, expected: datetime) -> None:
    assert SlotTrigger(SOME, 10).get_next_fire_time(previous, NOW) == expected
