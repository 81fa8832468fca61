"""The yardstick every benchmark divides by: a bare aiohttp loop, a new connection per request."""

from __future__ import annotations

import asyncio
import time

import aiohttp


async def bare_aiohttp_rps(url: str, *, seconds: float = 5.0, concurrency: int = 64) -> float:
    """Requests per second of a plain aiohttp client loop (fresh connection each, like a check)."""
    done = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(force_close=True, limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url) as response:
                    await response.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return done / elapsed
