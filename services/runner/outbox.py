"""The runner's outbox: results that complete close together travel home as one confirmed message.

Each result alone is a persistent publish, a confirm, a queue entry and a delivery to results and to
alerts; the broker's cost is per message, not per byte (issue 8). The outbox gathers results for at most
``max_wait_ms`` after the first, up to ``max_items`` and under ``MAX_MESSAGE_BYTES`` encoded, and
publishes them as one ``CheckCompletedBatch`` with publisher confirms. Each caller waits until the
message holding its result is confirmed, so the runner's handler — and with it the bus's ack of the
``RunCheck`` — returns only after its result is durable on the broker: a runner killed mid-batch leaves
those runs unacked, the broker hands them to another runner, and results and alerts deduplicate the
repeated runs by ``run_id`` and by slot × region.

A result that finds no company goes as a plain ``CheckCompleted`` (consumers older than the batch kind
keep working at low load). A batch no queue takes (results or alerts older than this runner: unroutable)
or that the broker refused (nacked) is sent again as singles, each caller getting its own publish's
outcome. ``max_items == 1`` turns batching off: every result is published alone, at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Final

from contracts.topology import MAX_MESSAGE_BYTES
from contracts.v1 import CheckCompleted, CheckCompletedBatch
from contracts.v1.runs import MAX_BATCH_ITEMS
from services.common.bus import Publisher
from services.common.errors import NotConfirmed, Unroutable

log = logging.getLogger(__name__)

#: Room kept for the batch's own fields (ids, time, kind, region) and the commas between items.
ENVELOPE_BYTES: Final = 1024
#: How long, after a batch came back unroutable, results go alone before a batch is tried again.
UNROUTABLE_PAUSE_S: Final = 60.0


@dataclass
class _Waiting:
    result: CheckCompleted
    size: int
    done: asyncio.Future[None]


class Outbox:
    """Gathers a region's results into batches; :meth:`send` returns once its result is confirmed."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        region: str,
        max_items: int = 100,
        max_wait_ms: float = 20.0,
        max_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self._publisher = publisher
        self._region = region
        self._max_items = max(1, min(max_items, MAX_BATCH_ITEMS))
        self._max_wait_s = max_wait_ms / 1000
        self._max_bytes = max_bytes
        self._pending: list[_Waiting] = []
        self._bytes = ENVELOPE_BYTES
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        #: Until when (monotonic) results go alone because the last batch had no queue to go to.
        self._alone_until = 0.0
        self.batches = 0
        self.singles = 0

    async def start(self) -> None:
        """Nothing to start: a batch's timer is armed by its first result."""

    async def stop(self) -> None:
        """Send what is gathered now and wait for every publish still in flight."""
        self._cut()
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def send(self, result: CheckCompleted, size: int) -> None:
        """Publish ``result`` (``size`` = its encoded bytes) in the next batch; returns once the message
        holding it is confirmed. Raises what its publish raised (``NotConfirmed``, ``BusClosed``…)."""
        if (
            self._max_items == 1
            or size + ENVELOPE_BYTES >= self._max_bytes
            or result.region != self._region  # a batch speaks for one region: a stray run goes alone
            or time.monotonic() < self._alone_until
        ):
            await self._single(result)
            return
        if self._bytes + size + 1 > self._max_bytes:
            self._cut()
        waiting = _Waiting(result, size, asyncio.get_running_loop().create_future())
        self._pending.append(waiting)
        self._bytes += size + 1
        if len(self._pending) >= self._max_items:
            self._cut()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait_s, self._cut)
        await waiting.done

    def _cut(self) -> None:
        """Close the batch being gathered and start publishing it."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending, self._bytes = self._pending, [], ENVELOPE_BYTES
        if not batch:
            return
        task = asyncio.get_running_loop().create_task(self._publish(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, batch: list[_Waiting]) -> None:
        if len(batch) == 1:
            await self._settle_alone(batch[0])
            return
        try:
            message = CheckCompletedBatch(region=self._region, items=[waiting.result for waiting in batch])
            await self._publisher.publish(message, mandatory=True)
        except Unroutable:
            self._alone_until = time.monotonic() + UNROUTABLE_PAUSE_S
            log.warning(
                "no consumer for check.completed.batch (results or alerts older than the runner?): "
                "%d results sent alone, and every result for %.0f s",
                len(batch),
                UNROUTABLE_PAUSE_S,
            )
        except NotConfirmed as exc:
            log.warning("batch of %d results not confirmed, sending them alone error=%s", len(batch), exc)
        except Exception as exc:
            for waiting in batch:
                _resolve(waiting.done, exc)
            return
        else:
            self.batches += 1
            for waiting in batch:
                _resolve(waiting.done, None)
            return
        await asyncio.gather(*(self._settle_alone(waiting) for waiting in batch))

    async def _settle_alone(self, waiting: _Waiting) -> None:
        try:
            await self._single(waiting.result)
        except Exception as exc:
            _resolve(waiting.done, exc)
        else:
            _resolve(waiting.done, None)

    async def _single(self, result: CheckCompleted) -> None:
        await self._publisher.publish(result)
        self.singles += 1


def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
    """Settle a caller's wait unless it already gave up (its handler was cancelled at shutdown)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        # Retrieved here so a caller that was cancelled meanwhile does not log "never retrieved".
        with contextlib.suppress(BaseException):
            future.exception()


__all__ = ["ENVELOPE_BYTES", "Outbox"]
