"""The one way tests wait: poll a condition until it holds or a deadline passes (never sleep and hope)."""

from __future__ import annotations

import asyncio
from typing import Any


async def eventually(predicate: Any, *, within: float, every: float = 0.05, what: str = "condition") -> Any:
    """Await ``predicate()`` (sync or async) until truthy; fail with ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(every)


async def took(predicate: Any, *, within: float, every: float = 0.05, what: str = "condition") -> float:
    """:func:`eventually`, returning how many seconds the condition took to hold (for timing asserts)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await eventually(predicate, within=within, every=every, what=what)
    return loop.time() - start
