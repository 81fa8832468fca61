"""Group many handler calls into one transaction: each caller waits until its item is committed.

Handlers call :meth:`Batcher.submit` and are acked by the bus only when it returns, so a message is
acknowledged after — never before — its effect is durable. While the database cannot be reached the
batch is retried with backoff (its messages stay unacked, the prefetch bounds how many). Any other
failure is blamed on the data: the batch is split in halves and each half tried on its own, down to
single items, so one poison message fails (and is redelivered, then dead-lettered) alone while the
rest of its batch is committed. The results and the alerts consumers both batch this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.common.db.retry import is_transient
from services.common.metrics import DB_RETRIES, DB_UNAVAILABLE

log = logging.getLogger(__name__)

Item = tuple[str, Any]
Flush = Callable[[list[Item]], Awaitable[None]]
Pending = list[tuple[Item, "asyncio.Future[None]"]]


@dataclass
class Batcher:
    """Collects ``(kind, item)`` pairs; flushes at ``max_items`` or ``max_wait_ms`` after the first."""

    flush: Flush
    max_items: int = 500
    max_wait_ms: float = 50.0
    #: Names the batcher in logs and in the database-retry metrics.
    name: str = "results"
    _pending: Pending = field(default_factory=list)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    #: Set by :meth:`submit_many`: the caller already collected a batch, so flush without waiting.
    _eager: bool = False
    batches: int = 0
    items: int = 0
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0

    async def start(self) -> None:
        """Start the flusher."""
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-batcher")

    async def stop(self) -> None:
        """Flush what is pending, then stop."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, kind: str, item: Any) -> None:
        """Queue an item and wait until the batch holding it is committed (raises if its commit failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(((kind, item), future))
        if len(self._pending) == 1 or len(self._pending) >= self.max_items:
            self._wakeup.set()
        await future

    async def submit_many(self, items: Sequence[Item]) -> list[BaseException | None]:
        """Queue a batch the caller already collected (a bus batch) and flush it without waiting for
        company; returns, per item, ``None`` once committed or the exception that failed it alone.

        Items still go through :meth:`_flush_batch`, so the database being away is waited out (nothing
        returns until it is back) and a poison item is split out and fails alone.
        """
        if not items:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in items]
        self._pending.extend(zip(items, futures, strict=True))
        self._eager = True
        self._wakeup.set()
        await asyncio.wait(futures)
        return [future.exception() for future in futures]

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
            while len(self._pending) < self.max_items and not self._stopping and not self._eager:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                self._wakeup.clear()
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            if self._pending:
                self._wakeup.set()
            else:
                self._eager = False
            await self._flush_batch(batch)

    async def _flush_batch(self, batch: Pending) -> None:
        """Commit ``batch``, riding out an unreachable database; on any other failure, split it."""
        delay = self.retry_initial_s
        while True:
            try:
                await self.flush([item for item, _ in batch])
                break
            except Exception as exc:
                live = [future for _, future in batch if not future.done()]
                if is_transient(exc) and live and not self._stopping:
                    DB_UNAVAILABLE.labels(self.name).set(1)
                    DB_RETRIES.labels(self.name).inc()
                    # The database is away (restart, failover, network): keep the messages unacked and
                    # try again, rather than fail them into redelivery and, after a few, the dead letters.
                    log.warning(
                        "database unavailable, retrying batch of %s items=%d in=%.1fs error=%s",
                        self.name,
                        len(batch),
                        delay,
                        type(exc).__name__,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry_max_s)
                    continue
                if len(batch) > 1 and not is_transient(exc):
                    # Blame the data, not the batch: each half on its own, so a poison item fails alone.
                    log.warning(
                        "batch of %s failed, splitting items=%d error=%s",
                        self.name,
                        len(batch),
                        str(exc)[:300],
                    )
                    half = len(batch) // 2
                    await self._flush_batch(batch[:half])
                    await self._flush_batch(batch[half:])
                    return
                log.exception("%s batch write failed items=%d", self.name, len(batch))
                for future in live:
                    future.set_exception(exc)
                return
        DB_UNAVAILABLE.labels(self.name).set(0)
        self.batches += 1
        self.items += len(batch)
        for _, future in batch:
            if not future.done():
                future.set_result(None)


async def submit_messages(
    batcher: Batcher, messages: Iterable[Any], items_of: Callable[[Any], list[Item]]
) -> list[BaseException | None]:
    """A bus batch whose messages may each hold several items (a runner's batch of results, a router's
    batch of misses): every item of every message goes to ``batcher`` at once, and each message's outcome
    is its items' — ``None`` once all are committed, else the error of the first that failed. A message
    whose items cannot even be built (``items_of`` raised) fails alone with that error."""
    spans: list[tuple[int, int] | BaseException] = []
    items: list[Item] = []
    for message in messages:
        try:
            own = items_of(message)
        except Exception as exc:
            spans.append(exc)
            continue
        spans.append((len(items), len(items) + len(own)))
        items.extend(own)
    done = await batcher.submit_many(items)
    outcomes: list[BaseException | None] = []
    for span in spans:
        if isinstance(span, BaseException):
            outcomes.append(span)
            continue
        start, end = span
        outcomes.append(next((error for error in done[start:end] if error is not None), None))
    return outcomes
