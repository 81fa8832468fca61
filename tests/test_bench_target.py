"""The benchmark target answers real HTTP clients correctly, so the bench measures checks, not errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bench.target import TargetProtocol


@pytest.fixture
async def target() -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TargetProtocol, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("path", "status", "at_least_ms"),
    [
        ("/fast", 200, 0),
        ("/fast?x=1", 200, 0),
        ("/delay/50", 200, 50),
        ("/nope", 404, 0),
        ("/delay/abc", 404, 0),
    ],
    ids=["fast", "fast-with-query", "delay-50ms", "unknown-path", "delay-not-a-number"],
)
async def test_target_answers(target: str, path: str, status: int, at_least_ms: int) -> None:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        async with session.get(f"{target}{path}") as response:
            body = await response.read()
        elapsed_ms = (time.perf_counter() - started) * 1000
    assert response.status == status
    assert elapsed_ms >= at_least_ms
    if status == 200:
        assert b'"ok": true' in body
