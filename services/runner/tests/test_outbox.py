"""The outbox on a fake publisher: what travels together, when a caller is released, and what goes alone."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from contracts.v1 import AnyMessage, CheckCompleted, CheckCompletedBatch, encode, utcnow
from services.common.errors import BusClosed, NotConfirmed, Unroutable
from services.runner.outbox import ENVELOPE_BYTES, Outbox

NOW = utcnow()


def completed(region: str = "eu-north-1") -> tuple[CheckCompleted, int]:
    result = CheckCompleted(
        run_id=uuid.uuid4(),
        check_id=uuid.uuid4(),
        slot=NOW,
        region=region,
        status="passed",
        started_at=NOW,
        completed_at=NOW,
    )
    return result, len(encode(result))


class FakeBroker:
    """Records what was published; a batch publish may be held (no confirm yet) or refused."""

    def __init__(self, refuse_batches: type[Exception] | None = None) -> None:
        self.published: list[AnyMessage] = []
        self.confirm = asyncio.Event()
        self.confirm.set()
        self.refuse_batches = refuse_batches

    async def publish(
        self,
        message: AnyMessage,
        *,
        routing_key: str | None = None,
        expiration: float | None = None,
        mandatory: bool = False,
    ) -> None:
        if isinstance(message, CheckCompletedBatch):
            assert mandatory, "a batch must come back when nothing takes it, to be sent alone"
            if self.refuse_batches is not None:
                raise self.refuse_batches("refused")
        await self.confirm.wait()
        self.published.append(message)

    def run_ids(self) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        for message in self.published:
            items = message.items if isinstance(message, CheckCompletedBatch) else [message]
            ids.extend(item.run_id for item in items)  # type: ignore[attr-defined]
        return ids


async def test_results_completing_together_travel_as_one_batch_and_a_lone_one_alone() -> None:
    broker = FakeBroker()
    outbox = Outbox(broker, region="eu-north-1", max_items=100, max_wait_ms=20)
    together = [completed() for _ in range(30)]
    await asyncio.gather(*(outbox.send(result, size) for result, size in together))
    lone, size = completed()
    await outbox.send(lone, size)
    await outbox.stop()
    assert [type(message) for message in broker.published] == [CheckCompletedBatch, CheckCompleted]
    assert broker.run_ids() == [result.run_id for result, _ in together] + [lone.run_id]


@pytest.mark.parametrize(
    ("max_items", "max_bytes", "expected"),
    [(10, 1 << 20, [10, 10, 5]), (1, 1 << 20, [1] * 25), (100, None, [8, 8, 8, 1])],
    ids=["by-count", "batching-off", "by-size"],
)
async def test_a_batch_is_cut_by_count_and_by_encoded_size(
    max_items: int, max_bytes: int | None, expected: list[int]
) -> None:
    results = [completed() for _ in range(25)]
    size = results[0][1]
    broker = FakeBroker()
    # by size: room for exactly eight items after the envelope
    limit = max_bytes if max_bytes is not None else ENVELOPE_BYTES + 8 * (size + 1) + 1
    outbox = Outbox(broker, region="eu-north-1", max_items=max_items, max_wait_ms=20, max_bytes=limit)
    await asyncio.gather(*(outbox.send(result, size) for result, size in results))
    await outbox.stop()
    lengths = [len(m.items) if isinstance(m, CheckCompletedBatch) else 1 for m in broker.published]
    assert lengths == expected
    assert sorted(broker.run_ids()) == sorted(result.run_id for result, _ in results)


async def test_no_caller_is_released_before_its_batch_is_confirmed() -> None:
    """The runner's handler returns (and the bus acks its RunCheck) only after ``send`` returned."""
    broker = FakeBroker()
    broker.confirm.clear()
    outbox = Outbox(broker, region="eu-north-1", max_items=100, max_wait_ms=5)
    sends = [asyncio.ensure_future(outbox.send(*completed())) for _ in range(5)]
    await asyncio.sleep(0.1)  # the batch was cut long ago; its confirm has not come
    assert not any(send.done() for send in sends)
    assert broker.published == []
    broker.confirm.set()
    await asyncio.wait_for(asyncio.gather(*sends), 5)
    await outbox.stop()
    assert len(broker.published) == 1


@pytest.mark.parametrize("refusal", [Unroutable, NotConfirmed], ids=["unroutable", "nacked"])
async def test_a_batch_nothing_takes_is_sent_again_as_singles(refusal: type[Exception]) -> None:
    broker = FakeBroker(refuse_batches=refusal)
    outbox = Outbox(broker, region="eu-north-1", max_items=100, max_wait_ms=5)
    results = [completed() for _ in range(6)]
    await asyncio.gather(*(outbox.send(result, size) for result, size in results))
    await outbox.stop()
    assert all(isinstance(message, CheckCompleted) for message in broker.published)
    assert sorted(broker.run_ids()) == sorted(result.run_id for result, _ in results)


async def test_each_caller_gets_the_failure_of_the_publish_that_carried_its_result() -> None:
    class Closed(FakeBroker):
        async def publish(self, message: AnyMessage, **_: Any) -> None:
            raise BusClosed("not started")

    outbox = Outbox(Closed(), region="eu-north-1", max_items=100, max_wait_ms=5)
    outcomes = await asyncio.gather(*(outbox.send(*completed()) for _ in range(4)), return_exceptions=True)
    await outbox.stop()
    assert [type(outcome) for outcome in outcomes] == [BusClosed] * 4


async def test_a_run_of_another_region_goes_alone_and_the_batch_still_travels() -> None:
    """A batch speaks for one region; a RunCheck that reached this runner for another region (published
    by hand to its queue) must not hold up, or invalidate, the batch of its neighbours."""
    broker = FakeBroker()
    outbox = Outbox(broker, region="eu-north-1", max_items=100, max_wait_ms=5)
    stray, stray_size = completed("us-west-2")
    ours = [completed() for _ in range(3)]
    await asyncio.wait_for(
        asyncio.gather(outbox.send(stray, stray_size), *(outbox.send(r, size) for r, size in ours)), 5
    )
    await outbox.stop()
    batches = [message for message in broker.published if isinstance(message, CheckCompletedBatch)]
    assert [len(batch.items) for batch in batches] == [3]
    assert stray in broker.published
