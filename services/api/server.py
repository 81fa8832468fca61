"""Serving the app with uvicorn inside a service's event loop (so ``seymour up`` is one process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Sequence

import uvicorn
from litestar import Litestar

from services.api.throttle import trusted_networks

log = logging.getLogger(__name__)


def listening_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A bound TCP socket, created as ``IPPROTO_TCP`` so asyncio sets ``TCP_NODELAY`` on every accepted
    connection: it does so only when the socket's protocol says TCP, and with protocol 0 Nagle's
    algorithm held each small response on a keep-alive connection for a delayed ACK (~40 ms)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:  # several api workers on one port: the kernel spreads connections over them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def freeze_heap() -> None:
    """Move everything alive after start-up (modules, the app, compiled templates and statements) out of
    the collector's reach: full collections walked all of it, 80–100 ms pauses that showed up as the
    slowest requests. Objects made later are collected as usual."""
    gc.collect()
    gc.freeze()


class ApiServer:
    """A uvicorn server as a :class:`services.common.service.Lifecycle`."""

    def __init__(
        self,
        app: Litestar,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        trusted_proxies: Sequence[str] = (),
    ) -> None:
        # X-Forwarded-For/-Proto only from the proxies the deployment names (uvicorn's own default
        # trusted 127.0.0.1 or $FORWARDED_ALLOW_IPS, whatever Seymour's settings said).
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            lifespan="on",
            access_log=False,
            forwarded_allow_ips=trusted_networks(trusted_proxies),
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self.port = port
        self.reuse_port = reuse_port

    async def start(self) -> None:
        """Bind and serve in the background; returns once the socket is listening."""
        self._server.config.load()
        sock = listening_socket(self.host, self.port, reuse_port=self.reuse_port)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="api-server")
        for _ in range(500):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        freeze_heap()
        log.info("api listening host=%s port=%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, finish requests, return."""
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, 10)
