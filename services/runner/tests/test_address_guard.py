"""SSRF: a check cannot reach what the runner's host reaches and its author cannot.

Every test here talks to 127.0.0.0/8 (or ::1) only: a blocked address is reached through the injected
resolver or a redirect, and the guard refuses it before a socket exists, so no packet leaves.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from services.common.netguard import AddressGuard
from services.runner.http_check import HttpChecker
from services.runner.tests.support import MapResolver, make_spec


class _Local:
    """A local service that counts the requests it answered (what an SSRF would reach)."""

    def __init__(self) -> None:
        self.hits = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(text="internal admin page")


@pytest.fixture
async def local_service() -> AsyncIterator[tuple[_Local, int]]:
    """A service on 127.0.0.1 and ::1, same port where possible: what 0.0.0.0 and [::] would reach."""
    local = _Local()
    app = web.Application()
    app.router.add_get("/{tail:.*}", local.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    if socket.has_ipv6:
        with contextlib.suppress(OSError):
            await web.TCPSite(runner, "::1", port).start()
    yield local, port
    await runner.cleanup()


async def _run(
    guard: AddressGuard, url: str, resolver: MapResolver | None = None
) -> tuple[str, str | None, str]:
    checker = HttpChecker(region="eu-north-1", guard=guard, resolver=resolver)
    try:
        result = await checker.run(make_spec(url))
    finally:
        await checker.stop()
    error = result.error
    return result.status, error.cls if error else None, error.message if error else ""


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "[::]", "[::ffff:0.0.0.0]"], ids=["zero-v4", "zero-v6", "zero-mapped"]
)
@pytest.mark.parametrize("block_private", [False, True], ids=["seymour-up", "provisioned"])
async def test_unspecified_address_does_not_reach_a_local_service(
    local_service: tuple[_Local, int], host: str, block_private: bool
) -> None:
    """``http://0.0.0.0:port/`` and ``http://[::]:port/`` connect to the host itself on Linux."""
    local, port = local_service
    status, cls, message = await _run(AddressGuard(block_private=block_private), f"http://{host}:{port}/")
    assert (status, cls) == ("error", "blocked"), message
    assert local.hits == 0


WRAPPED = {
    "metadata.test": "169.254.169.254",
    "metadata6.test": "fd00:ec2::254",
    "nat64.test": "64:ff9b::a9fe:a9fe",
    "sixtofour.test": "2002:a9fe:a9fe::1",
    "compat.test": "::a9fe:a9fe",
    "zero.test": "0.0.0.0",
    "linklocal6.test": "fe80::1",
}


@pytest.mark.parametrize("name", sorted(WRAPPED))
async def test_names_resolving_to_the_fixed_set_are_refused_before_connecting(name: str) -> None:
    """Whatever ``SEYMOUR_BLOCKED_NETWORKS`` says (here: something unrelated), the fixed set holds."""
    resolver = MapResolver(WRAPPED)
    guard = AddressGuard(["203.0.113.0/24"])
    checker = HttpChecker(region="eu-north-1", guard=guard, resolver=resolver)
    try:
        result = await checker.run(make_spec(f"http://{name}/latest/meta-data/"))
    finally:
        await checker.stop()
    assert result.error is not None
    assert (result.status, result.error.cls) == ("error", "blocked"), result.error.message
    assert "blocked network" in result.error.message
    assert result.timings.connect_ms is None  # no socket was ever connected
    assert resolver.asked == [name]


@pytest.mark.parametrize(
    "target_host", ["127.0.0.2", "0.0.0.0", "[::1]"], ids=["other-loopback", "zero", "v6-loopback"]
)
async def test_redirect_to_a_blocked_address_is_refused(
    local_service: tuple[_Local, int], target_host: str
) -> None:
    """A provisioned runner allowed to reach one address (127.0.0.1) is redirected elsewhere on the
    host: every hop is vetted."""
    local, port = local_service

    async def hop(_: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://{target_host}:{port}/secret")

    app = web.Application()
    app.router.add_get("/", hop)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    front = runner.addresses[0][1]
    try:
        guard = AddressGuard(allowed=["127.0.0.1/32"], block_private=True)
        status, cls, message = await _run(guard, f"http://127.0.0.1:{front}/")
    finally:
        await runner.cleanup()
    assert (status, cls) == ("error", "blocked"), message
    assert local.hits == 0


@pytest.mark.parametrize(
    ("block_private", "expected"),
    [(False, "passed"), (True, "error")],
    ids=["seymour-up-reaches-loopback", "provisioned-refuses-loopback"],
)
async def test_loopback_open_in_seymour_up_closed_when_provisioned(
    local_service: tuple[_Local, int], block_private: bool, expected: str
) -> None:
    local, port = local_service
    status, _, _ = await _run(AddressGuard(block_private=block_private), f"http://127.0.0.1:{port}/")
    assert status == expected
    assert local.hits == (1 if expected == "passed" else 0)
