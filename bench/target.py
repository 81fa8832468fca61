"""A cheap local HTTP target for benchmarks: a raw asyncio protocol, in its own process.

``GET /fast`` answers at once; ``GET /delay/<ms>`` answers after that many milliseconds. It parses only
the request line, answers with ``Connection: close`` (checks use a fresh connection per run anyway) and
keeps no framework on the path, so its CPU per request stays small next to what is being measured; the
benches still report its CPU on its own line.

Each delayed answer carries ``X-Late-Us``: how much later than asked the answer was written, in µs. A
loaded machine reads the request late and wakes the target's timer late; a client's error against the
known delay includes that, and the benches subtract it to show the client's own share. With
``--loop stock`` (the default on Linux) it is counted from the kernel's arrival stamp of the request
(``SO_TIMESTAMPNS``, read through the accepted socket's ``recv``, which asyncio's selector loop
calls); with ``--loop uvloop`` (less CPU per request) from when the loop read it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import struct
import sys
import time
from typing import Any

BODY = b'{"ok": true, "id": 1, "title": "demo", "completed": false, "dueDate": null}'
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nConnection: close\r\nX-Late-Us: "
)
RESPONSE = HEAD + b"0\r\n\r\n" + BODY
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
MAX_HEAD = 16 * 1024
SO_TIMESTAMPNS = 35
#: Arrival (CLOCK_REALTIME ns) of the bytes of the newest read; data_received runs right after it.
arrival = {"ns": 0}


class _StampedConnection(socket.socket):
    """An accepted connection whose reads keep the kernel's arrival stamp."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self.recvmsg(bufsize, 128, flags)
        arrival["ns"] = time.time_ns()
        for level, kind, stamp in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(stamp) >= 16:
                seconds, nanoseconds = struct.unpack_from("@qq", stamp)
                arrival["ns"] = int(seconds) * 1_000_000_000 + int(nanoseconds)
        return data


class _StampingListener(socket.socket):
    """A listening socket handing out :class:`_StampedConnection`s."""

    def accept(self) -> tuple[socket.socket, Any]:
        fd, address = self._accept()  # type: ignore[attr-defined]
        conn = _StampedConnection(self.family, self.type, self.proto, fileno=fd)
        conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        return conn, address


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
        self.transport: Any = None  # asyncio's or uvloop's transport
        self.buffer = b""
        self.answered = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
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
            came = arrival["ns"] or time.time_ns()
            arrival["ns"] = 0
            due = came + delay * 1_000_000
            wait = max(0.0, (due - time.time_ns()) / 1e9)
            asyncio.get_running_loop().call_later(wait, self.reply_late, due)

    def reply_late(self, due: int) -> None:
        """Answer a delayed request, saying how late the answer is."""
        late = max(0, (time.time_ns() - due) // 1000)
        self.reply(HEAD + str(late).encode() + b"\r\n\r\n" + BODY)

    def reply(self, payload: bytes) -> None:
        """Send ``payload`` and close, unless the client already went away."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(payload)
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(port: int, stamped: bool = False) -> None:
    """Serve on 127.0.0.1:``port`` until cancelled (``stamped``: with kernel arrival stamps)."""
    loop = asyncio.get_running_loop()
    if stamped:
        listener = _StampingListener(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # inherited: stamped from the start
        listener.bind(("127.0.0.1", port))
        listener.listen(4096)
        server = await loop.create_server(TargetProtocol, sock=listener)
    else:
        server = await loop.create_server(TargetProtocol, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Serve on 127.0.0.1:PORT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    default = "stock" if sys.platform == "linux" else "uvloop"
    parser.add_argument("--loop", choices=["stock", "uvloop"], default=default)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(serve(args.port))
        else:
            asyncio.run(serve(args.port, stamped=sys.platform == "linux"))


if __name__ == "__main__":
    main()
