"""The served api answers small requests on a kept-alive connection without Nagle's delayed-ACK stall."""

from __future__ import annotations

import asyncio
import statistics
import time

from services.api.app import create_app
from services.api.server import ApiServer
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings

from .conftest import Published

REQUESTS = 15


async def keep_alive_latencies(port: int, path: str, count: int) -> list[float]:
    """Milliseconds per GET, all on one HTTP/1.1 connection (as browsers and htmx reuse them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await asyncio.wait_for(reader.readexactly(length), 10)
            out.append((time.perf_counter() - started) * 1000)
    finally:
        writer.close()
    return out


async def test_small_responses_on_a_kept_alive_connection_take_no_delayed_ack(sqlite_url: str) -> None:
    """With Nagle on, every response after the first waited ~40 ms for the client's delayed ACK."""
    engine = make_engine(sqlite_url)
    app = create_app(Settings(), sessions=make_sessionmaker(engine), bus=Published())
    server = ApiServer(app, "127.0.0.1", 0)
    await server.start()
    try:
        latencies = await keep_alive_latencies(server.port, "/healthz", REQUESTS)
    finally:
        await server.stop()
        await engine.dispose()
    # Nagle + delayed ACK costs ≥ 40 ms on every request after the first; a loaded machine costs far less.
    assert statistics.median(latencies[1:]) < 20, latencies
