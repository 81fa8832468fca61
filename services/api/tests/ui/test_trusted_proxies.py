"""Login throttling behind a reverse proxy: ``X-Forwarded-For`` counts only when a trusted proxy sent it.

Served for real on 127.0.0.1, so the peer address is the socket's: this test plays the proxy (from
127.0.0.2) or the attacker talking to the api directly (from 127.0.0.1), and writes the header itself.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from services.api.app import create_app
from services.api.server import ApiServer
from services.api.throttle import ADDRESS_FREE, trusted_networks
from services.common.db.engine import make_engine, make_sessionmaker
from services.common.settings import Settings

from .conftest import Published


@asynccontextmanager
async def served(template: Path, tmp_path: Path, trusted: list[str]) -> AsyncIterator[str]:
    """A real api on 127.0.0.1 with ``SEYMOUR_TRUSTED_PROXIES`` = ``trusted``; yields its base URL."""
    path = tmp_path / "seymour.db"
    shutil.copyfile(template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    app = create_app(
        Settings(secret_key="proxy-test-key", trusted_proxies=trusted),
        sessions=make_sessionmaker(engine),
        bus=Published(),
    )
    server = ApiServer(app, "127.0.0.1", 0, trusted_proxies=trusted)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()
        await engine.dispose()


async def _attempt(base: str, username: str, forwarded_for: str, source: str = "127.0.0.1") -> int:
    """One wrong-password login from ``source`` with its own form (and CSRF cookie), claiming to be
    ``forwarded_for``."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(base_url=base, timeout=10, transport=transport) as client:
        page = await client.get("/login")
        token = re.search(r'name="_csrf" value="([^"]+)"', page.text)
        assert token is not None
        answer = await client.post(
            "/login",
            data={"username": username, "password": "wrong-guess", "_csrf": token.group(1), "next": "/"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return answer.status_code


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    ui_template_db: Path, tmp_path: Path
) -> None:
    """The attack: rotate ``X-Forwarded-For`` on every guess to look like a new client each time."""
    async with served(ui_template_db, tmp_path, ["127.0.0.2"]) as base:
        statuses = [await _attempt(base, f"user{n}", f"203.0.113.{n}") for n in range(ADDRESS_FREE)]
    assert statuses[:-1] == [401] * (ADDRESS_FREE - 1)
    assert statuses[-1] == 429, "127.0.0.1 is not a trusted proxy: its header names nobody"


async def test_through_a_trusted_proxy_clients_are_throttled_apart(
    ui_template_db: Path, tmp_path: Path
) -> None:
    """Everyone arrives from the proxy: one guesser must not lock the others out, and cannot escape by
    writing its own ``X-Forwarded-For`` (the proxy appends the address it saw)."""
    async with served(ui_template_db, tmp_path, ["127.0.0.2/32"]) as base:
        guesser = [
            await _attempt(base, f"user{n}", f"198.51.100.{n}, 203.0.113.7", source="127.0.0.2")
            for n in range(ADDRESS_FREE)
        ]
        someone_else = await _attempt(base, "someone", "203.0.113.8", source="127.0.0.2")
    assert guesser[:-1] == [401] * (ADDRESS_FREE - 1)
    assert guesser[-1] == 429, "the guesser is counted by the address the proxy saw, whatever it wrote"
    assert someone_else == 401, "another client behind the same proxy may still try"


def test_a_typo_in_the_setting_stops_the_api() -> None:
    assert trusted_networks(["10.0.0.0/8", " ::1 ", "192.0.2.7"]) == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        trusted_networks(["10.0.0.0/8", "10.0.0.300"])
