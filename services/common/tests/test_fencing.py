"""EpochFence: slots fired by a deposed scheduler leader are dropped, everything else passes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from contracts.v1 import CheckDue, CheckSpec, RequestSpec
from services.common.fencing import EpochFence


@pytest.mark.parametrize(
    ("epochs", "admitted"),
    [
        ([1, 1, 1], [True, True, True]),
        ([1, 2, 1, 2], [True, True, False, True]),
        ([3, 5, 4, 5, 6], [True, True, False, True, True]),
        ([2, 0], [True, False]),
    ],
    ids=["one-leader", "old-leader-wakes-up", "skipped-epochs", "unstamped-after-stamped"],
)
def test_admits_only_the_highest_epoch_seen(epochs: list[int], admitted: list[bool]) -> None:
    fence = EpochFence()
    assert [fence.admit(epoch) for epoch in epochs] == admitted
    assert fence.highest == max(epochs)
    assert fence.rejected == admitted.count(False)


SPEC = CheckSpec(name="x", request=RequestSpec(url="http://127.0.0.1:9/"), regions=["eu-north-1"])


@pytest.mark.parametrize(
    ("trigger", "admitted"),
    [("scheduled", False), ("manual", True), ("confirmation", True)],
    ids=["scheduled-stale", "manual", "confirmation"],
)
def test_only_scheduled_slots_are_fenced(trigger: str, admitted: bool) -> None:
    fence = EpochFence(highest=7)
    due = CheckDue(
        check_id=uuid.uuid4(),
        slot=datetime(2024, 5, 1, tzinfo=UTC),
        revision=1,
        spec=SPEC,
        trigger=trigger,  # type: ignore[arg-type]
        epoch=0,
    )
    assert fence.admit_due(due) is admitted
