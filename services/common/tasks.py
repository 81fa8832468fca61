"""Stopping background tasks: cancel, then wait until they have really finished."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task[object] | asyncio.Task[None] | None) -> None:
    """Cancel ``task`` (if any) and wait for it to end, swallowing its cancellation.

    Waiting matters: a lifecycle's ``stop`` returns only once its loop can no longer touch shared
    state (a session being closed, a lock being given up).
    """
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
