"""CheckCompletedBatch: a runner's results in one message, believed or refused whole."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from pydantic import ValidationError

from contracts.topology import ALERTS_EVALUATE, CHECK_COMPLETED_BATCH, RESULTS_STORE, ROUTING_KEYS
from contracts.v1 import CheckCompleted, CheckCompletedBatch, decode, encode, utcnow
from contracts.v1.runs import MAX_BATCH_ITEMS

NOW = utcnow()


def completed(region: str = "eu-north-1", index: int = 0) -> CheckCompleted:
    slot = NOW + timedelta(minutes=index)
    return CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=slot,
        region=region,
        status="passed",
        started_at=slot,
        completed_at=slot,
    )


def test_a_batch_round_trips_with_every_item_and_its_run_id() -> None:
    items = [completed(index=index) for index in range(3)]
    batch = CheckCompletedBatch(region="eu-north-1", items=items)
    decoded = decode(encode(batch))
    assert decoded == batch
    assert isinstance(decoded, CheckCompletedBatch)
    assert [item.run_id for item in decoded.items] == [item.run_id for item in items]


@pytest.mark.parametrize(
    ("items", "match"),
    [
        (0, "at least 1 item"),
        (MAX_BATCH_ITEMS + 1, f"at most {MAX_BATCH_ITEMS} items"),
    ],
    ids=["empty", "too-many"],
)
def test_a_batch_holds_one_to_a_thousand_items(items: int, match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        CheckCompletedBatch(region="eu-north-1", items=[completed(index=i) for i in range(items)])
    CheckCompletedBatch(region="eu-north-1", items=[completed(index=i) for i in range(MAX_BATCH_ITEMS)])


def test_an_item_of_another_region_makes_the_whole_batch_invalid_on_the_wire() -> None:
    """A batch is believed or refused whole: one stray item fails decoding (the consumer dead-letters the
    message), so no part of it is stored."""
    good = CheckCompletedBatch(region="eu-north-1", items=[completed(), completed(index=1)])
    wire = encode(good).replace(b'"region":"eu-north-1"', b'"region":"us-west-2"', 2)
    assert wire.count(b'"region":"us-west-2"') == 2  # the batch's region and its first item's
    with pytest.raises(ValidationError, match="us-west-2"):
        decode(wire)
    with pytest.raises(ValidationError, match="items of regions"):
        CheckCompletedBatch(region="eu-north-1", items=[completed(), completed("us-west-2")])


def test_results_and_alerts_are_bound_to_the_batch_key() -> None:
    assert ROUTING_KEYS["check.completed.batch"] == CHECK_COMPLETED_BATCH == "check.completed.batch.v1"
    assert CHECK_COMPLETED_BATCH in RESULTS_STORE.binding_keys
    assert CHECK_COMPLETED_BATCH in ALERTS_EVALUATE.binding_keys
