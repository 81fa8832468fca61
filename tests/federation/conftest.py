"""Fixtures for real federation: a second RabbitMQ node as a region, its vhosts, a pausable WAN link.

``region_node`` (session scope) starts one extra node (``tests/federation/node.py``) and always stops it;
each test gets its own vhost on it (``region_vhost``) and on home (``rabbit_url`` from the root conftest).
``wan`` is a TCP proxy on 127.0.0.1 between the region's links and the home broker: pausing it is a
WAN outage that the shared home broker (which other tests use) never notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.federation.node import RABBIT_BIN, RabbitNode

HOME_PLUGINS = ("rabbitmq_federation", "rabbitmq_shovel")
RABBIT_HOST = os.environ.get("SEYMOUR_TEST_RABBIT", "127.0.0.1:5672")


@pytest.fixture(scope="session")
def home_plugins() -> None:
    """The home node runs the upstream side of federation: the plugin must be on (idempotent)."""
    if shutil.which("rabbitmq-plugins") is None:
        pytest.skip("rabbitmq-plugins not installed")
    subprocess.run(
        ["rabbitmq-plugins", "enable", *HOME_PLUGINS], check=True, capture_output=True, timeout=120
    )


@pytest.fixture(scope="session")
def region_node(home_plugins: None) -> Iterator[RabbitNode]:
    """A second RabbitMQ node (management, federation, shovel) playing a region; stopped at the end."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        pytest.skip("RabbitMQ server not installed")
    node = RabbitNode(Path(tempfile.mkdtemp(prefix="seymour-region-node-")))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def region_vhost(region_node: RabbitNode) -> Iterator[str]:
    """A fresh vhost on the region node (guest has all permissions), deleted after the test."""
    vhost = f"region-t-{uuid.uuid4().hex[:10]}"
    region_node.ctl("add_vhost", vhost)
    region_node.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield vhost
    finally:
        region_node.ctl("delete_vhost", vhost, check=False)


def home_vhost(rabbit_url: str) -> str:
    """The vhost of a home ``rabbit_url``."""
    return urllib.parse.unquote(urllib.parse.urlsplit(rabbit_url).path[1:]) or "/"


def set_home_policy(vhost: str, name: str, pattern: str, definition: str) -> None:
    """A policy on the shared home node (the tests' stand-in for ``seymour region connect --home-api``)."""
    subprocess.run(
        ["rabbitmqctl", "-q", "set_policy", "-p", vhost, "--apply-to", "queues", name, pattern, definition],
        check=True,
        capture_output=True,
        timeout=60,
    )


@dataclass
class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; :meth:`cut` drops every connection and refuses new ones."""

    target_host: str
    target_port: int
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """The WAN goes down: stop listening and abort every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        """The WAN comes back on the same port."""
        await self.start()

    async def close(self) -> None:
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def url(self, vhost: str) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/{urllib.parse.quote(vhost, safe='')}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pumps = [
            asyncio.ensure_future(_pump(reader, up_writer)),
            asyncio.ensure_future(_pump(up_reader, writer)),
        ]
        for pump in pumps:
            self._tasks.add(pump)
            pump.add_done_callback(self._tasks.discard)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for side in (writer, up_writer):
            side.transport.abort()
            self._writers.discard(side)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()


@pytest.fixture
async def wan() -> AsyncIterator[TcpProxy]:
    """A pausable link from the region to the home broker."""
    host, _, port = RABBIT_HOST.partition(":")
    proxy = TcpProxy(host, int(port or 5672))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()
