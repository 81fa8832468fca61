"""The leader's outbox: slots due within a few milliseconds of each other leave as one message.

Every slot used to be its own persistent, confirmed ``CheckDue``: one publish, one confirm, one quorum-queue
entry and one delivery to the router, each costing about as much CPU as the slot itself. The outbox holds a
slot for at most ``linger`` seconds, gathering the slots that fall due meanwhile, and publishes them as one
``CheckDueBatch`` (a lone slot still goes as a plain ``CheckDue``). Each slot's firing waits for its batch's
confirm, so the ledger keeps a slot whose batch the broker did not take exactly as before.

Batches stay under half of ``MAX_MESSAGE_BYTES`` by the size of each slot's spec, and under ``max_items``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from contracts.topology import MAX_MESSAGE_BYTES
from contracts.v1 import CheckDue, CheckDueBatch
from services.common.bus import Publisher

#: How long a slot may wait for others to share its message (adds at most this to schedule→run lag).
LINGER: Final = 0.01
MAX_ITEMS: Final = 256
MAX_BYTES: Final = MAX_MESSAGE_BYTES // 2
#: What a slot adds to a batch besides its spec's JSON (ids, instants, kind, epoch).
ITEM_OVERHEAD: Final = 400
CLOSE_TIMEOUT: Final = 5.0


def _retrieve(done: asyncio.Future[None]) -> None:
    """Mark a batch's failure as seen even when every waiter has given up (timed out) on it."""
    if not done.cancelled():
        done.exception()


class DueOutbox:
    """Gathers ``CheckDue`` into batches; :meth:`send` returns once the slot's batch is confirmed."""

    def __init__(
        self,
        bus: Publisher,
        *,
        linger: float = LINGER,
        max_items: int = MAX_ITEMS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._bus = bus
        self._linger = linger
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._items: list[CheckDue] = []
        self._size = 0
        self._done: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.slots = 0

    async def send(self, due: CheckDue, spec_bytes: int) -> None:
        """Publish ``due`` with the slots around it; raise what the publish of its batch raised.

        ``spec_bytes`` is the size of the slot's spec as JSON, which bounds the batch's size.
        """
        size = spec_bytes + ITEM_OVERHEAD
        if self._items and self._size + size > self._max_bytes:
            self._flush()
        done = self._done
        if done is None:
            loop = asyncio.get_running_loop()
            done = self._done = loop.create_future()
            done.add_done_callback(_retrieve)
            self._timer = loop.call_later(self._linger, self._flush)
        self._items.append(due)
        self._size += size
        if len(self._items) >= self._max_items:
            self._flush()
        await asyncio.shield(done)

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, done = self._items, self._done
        self._items, self._size, self._done = [], 0, None
        if not items or done is None:
            return
        task = asyncio.get_running_loop().create_task(self._publish(items, done), name="scheduler-outbox")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _publish(self, items: list[CheckDue], done: asyncio.Future[None]) -> None:
        # The items are validated CheckDue already: the batch around them needs no second validation.
        message = items[0] if len(items) == 1 else CheckDueBatch.model_construct(items=items)
        try:
            await self._bus.publish(message, mandatory=True)
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.slots += len(items)
        if not done.done():
            done.set_result(None)

    async def close(self) -> None:
        """Publish what waits now and wait (bounded) for the batches in flight."""
        self._flush()
        pending = list(self._sending)
        if not pending:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*pending, return_exceptions=True)
        for task in pending:
            task.cancel()


__all__ = ["DueOutbox"]
