"""A cheap local HTTP target for benchmarks: a raw asyncio protocol, in its own process.

``GET /fast`` answers at once; ``GET /delay/<ms>`` answers after that many milliseconds. It parses only
the request line, answers with ``Connection: close`` (checks use a fresh connection per run anyway) and
keeps no framework on the path, so its CPU per request stays small next to what is being measured; the
benches still report its CPU on its own line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

BODY = b'{"ok": true, "id": 1, "title": "demo", "completed": false, "dueDate": null}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\n\r\n"
    + BODY
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 16 * 1024


def answer_delay_ms(request_line: bytes) -> int | None:
    """How long to wait before answering ``request_line``: 0 for /fast, N for /delay/N, None for 404."""
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
        return None
    path = parts[1].split(b"?", 1)[0]
    if path == b"/fast":
        return 0
    prefix = b"/delay/"
    if path.startswith(prefix) and path[len(prefix) :].isdigit():
        return min(int(path[len(prefix) :]), 60_000)
    return None


class TargetProtocol(asyncio.Protocol):
    """One connection: read the head, answer once, close."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.answered or self.transport is None:
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                self.transport.close()
            return
        self.answered = True
        delay = answer_delay_ms(self.buffer.split(b"\r\n", 1)[0])
        if delay is None:
            self.reply(NOT_FOUND)
        elif delay == 0:
            self.reply(RESPONSE)
        else:
            asyncio.get_running_loop().call_later(delay / 1000, self.reply, RESPONSE)

    def reply(self, payload: bytes) -> None:
        """Send ``payload`` and close, unless the client already went away."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(TargetProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve on 127.0.0.1:PORT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
