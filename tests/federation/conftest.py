"""Fixtures for real federation: a second RabbitMQ node as a region, its vhosts, a pausable WAN link.

``region_node`` (session scope) starts one extra node (``tests/federation/node.py``) and always stops it;
each test gets its own vhost on it (``region_vhost``) and on home (``rabbit_url`` from the root conftest).
``wan`` is a TCP proxy on 127.0.0.1 between the region's links and the home broker: pausing it is a
WAN outage that the shared home broker (which other tests use) never notices.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.proxy import TcpProxy
from tests.support.rabbit_node import RABBIT_BIN, RabbitNode

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
