"""The runner's memory budget for response bodies: what runs in flight may hold at once, in bytes.

Each run reserves the bodies it may read (``max_response_bytes`` of every request of its scenario) before
it sends anything and gives them back when it ends; a run that does not fit waits, first come first
served, so ``max_response_bytes`` × runs in flight never exceeds the budget (a 16 MiB cap × 256 runs was
4 GiB on a 1 GiB instance). A run asking more than the whole budget is given the whole budget: it then
runs alone. The wait happens before the run's clock starts, so it never shows in measured timings.

:func:`effective_concurrency` derives the runner's concurrency from the budget so that runs with the
default 1 MiB cap never wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

MIB: Final = 1024 * 1024
#: ``RequestSpec.max_response_bytes``'s default: the concurrency is derived so that these never wait.
DEFAULT_BODY_BYTES: Final = 1 * MIB


def effective_concurrency(concurrency: int, budget_bytes: int) -> int:
    """How many runs a runner takes at once: ``concurrency``, lowered so that as many runs with the
    default body cap fit the budget."""
    return max(1, min(concurrency, budget_bytes // DEFAULT_BODY_BYTES))


class BodyBudget:
    """A counting semaphore in bytes, FIFO, safe under cancellation."""

    def __init__(self, total_bytes: int) -> None:
        self.total = max(1, total_bytes)
        self.free = self.total
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[int]:
        """Reserve ``size`` bytes (at most the whole budget) for the block; yields what was reserved."""
        size = max(0, min(size, self.total))
        if self._waiters or self.free < size:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry = (size, granted)
            self._waiters.append(entry)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._release(size)
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(entry)
                    self._grant()
                raise
        else:
            self.free -= size
        try:
            yield size
        finally:
            self._release(size)

    def _release(self, size: int) -> None:
        self.free += size
        self._grant()

    def _grant(self) -> None:
        while self._waiters:
            size, granted = self._waiters[0]
            if granted.done():
                self._waiters.popleft()
                continue
            if size > self.free:
                return
            self._waiters.popleft()
            self.free -= size
            granted.set_result(None)
