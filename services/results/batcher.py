"""Group many handler calls into one transaction: each caller waits until its item is committed.

Handlers call :meth:`Batcher.submit` and are acked by the bus only when it returns, so a message is
acknowledged after — never before — its row is durable. While the database cannot be reached the
batch is retried with backoff (its messages stay unacked, the prefetch bounds how many); any other
failed commit fails every caller in the batch, and the bus redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from services.common.db.retry import is_transient
from services.common.metrics import DB_RETRIES, DB_UNAVAILABLE

log = logging.getLogger(__name__)

Flush = Callable[[list[tuple[str, dict[str, Any]]]], Awaitable[None]]


@dataclass
class Batcher:
    """Collects ``(kind, row)`` items; flushes at ``max_items`` or ``max_wait_ms`` after the first."""

    flush: Flush
    max_items: int = 500
    max_wait_ms: float = 50.0
    _pending: list[tuple[tuple[str, dict[str, Any]], asyncio.Future[None]]] = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    batches: int = 0
    items: int = 0
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0

    async def start(self) -> None:
        """Start the flusher."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="results-batcher")

    async def stop(self) -> None:
        """Flush what is pending, then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, kind: str, row: dict[str, Any]) -> None:
        """Queue a row and wait until the batch holding it is committed (raises if the commit failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((kind, row), future))
        if len(self._pending) == 1 or len(self._pending) >= self.max_items:
            self._wakeup.set()
        await future

    async def _run(self) -> None:
        while True:
            if self._stopping and not self._pending:
                return
            await self._wakeup.wait()
            self._wakeup.clear()
            if not self._pending:
                if self._stopping:
                    return
                continue
            deadline = time.monotonic() + self.max_wait_ms / 1000
            while len(self._pending) < self.max_items and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                self._wakeup.clear()
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            if self._pending:
                self._wakeup.set()
            await self._flush_batch(batch)

    async def _flush_batch(
        self, batch: list[tuple[tuple[str, dict[str, Any]], asyncio.Future[None]]]
    ) -> None:
        delay = self.retry_initial_s
        while True:
            try:
                await self.flush([item for item, _ in batch])
                break
            except Exception as exc:
                live = [future for _, future in batch if not future.done()]
                if is_transient(exc) and live and not self._stopping:
                    DB_UNAVAILABLE.labels("results").set(1)
                    DB_RETRIES.labels("results").inc()
                    # The database is away (restart, failover, network): keep the messages unacked and
                    # try again, rather than fail them into redelivery and, after a few, the dead letters.
                    log.warning(
                        "database unavailable, retrying batch items=%d in=%.1fs error=%s",
                        len(batch),
                        delay,
                        type(exc).__name__,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry_max_s)
                    continue
                log.exception("batch write failed items=%d", len(batch))
                for future in live:
                    future.set_exception(exc)
                return
        DB_UNAVAILABLE.labels("results").set(0)
        self.batches += 1
        self.items += len(batch)
        for _, future in batch:
            if not future.done():
                future.set_result(None)
