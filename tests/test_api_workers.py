"""``seymour serve api --workers 2``: two processes share the port, and a browser session, its CSRF token
and check changes work whichever worker a connection lands on."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.waiting import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.rabbit]

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "workers-test-password"
TOKEN = "workers-test-token"
ROUNDS = 16


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(pg_url: str, rabbit_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    env = {
        **os.environ,
        "SEYMOUR_DATABASE_URL": pg_url,
        "SEYMOUR_BROKER_URL": rabbit_url,
        "SEYMOUR_ADMIN_PASSWORD": PASSWORD,
        "SEYMOUR_API_TOKEN": TOKEN,
        "SEYMOUR_DATA_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "api", "--workers", "2", "--port", str(port)],
        cwd=ROOT,
        env=env,
    )
    try:
        yield process, port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def listening_pids(port: int) -> set[str]:
    """Ids of the processes listening on ``port``."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=True)
    return set(re.findall(r"pid=(\d+)", out.stdout))


def fresh_connections() -> aiohttp.ClientSession:
    """A client that opens a new connection per request, so the kernel picks a worker each time."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True), cookie_jar=aiohttp.CookieJar(unsafe=True)
    )


def demo_check() -> dict[str, Any]:
    return {
        "name": "workers-check",
        "request": {"method": "GET", "url": "http://127.0.0.1:9/health"},
        "regions": ["eu-north-1"],
        "interval": 60,
        "enabled": False,
    }


async def test_sessions_and_csrf_hold_across_api_workers(served: tuple[subprocess.Popen[bytes], int]) -> None:
    process, port = served
    base = f"http://127.0.0.1:{port}"
    async with fresh_connections() as client:

        async def healthy() -> bool:
            assert process.poll() is None, "the api exited"
            try:
                async with client.get(f"{base}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(healthy, within=90, every=0.2, what="the api answering")
        await eventually(lambda: len(listening_pids(port)) == 2, within=60, what="two workers listening")
        assert str(process.pid) not in listening_pids(port)

        async with client.get(f"{base}/login") as page:
            found = re.search(r'name="_csrf" value="([^"]+)"', await page.text())
        assert found is not None
        form = {"username": "admin", "password": PASSWORD, "_csrf": found.group(1), "next": "/"}
        async with client.post(f"{base}/login", data=form, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        api = {"Authorization": f"Bearer {TOKEN}"}
        async with client.post(f"{base}/api/v1/checks", json=demo_check(), headers=api) as response:
            assert response.status == 201, await response.text()
            check_id = (await response.json())["id"]

        csrf = ""
        for _ in range(ROUNDS):
            async with client.get(f"{base}/", allow_redirects=False) as response:
                assert response.status == 200, "a worker did not know the session"
                token = re.search(r'name="_csrf" value="([^"]+)"', await response.text())
                assert token is not None
                assert csrf in ("", token.group(1))
                csrf = token.group(1)
        headers = {"HX-Request": "true", "X-CSRF-Token": csrf}
        for index in range(ROUNDS):
            action = "pause" if index % 2 == 0 else "resume"
            async with client.post(f"{base}/checks/{check_id}/{action}", headers=headers) as response:
                assert response.status == 200, (action, await response.text())
                assert ("state-paused" in await response.text()) == (action == "pause")
        async with client.post(f"{base}/checks/{check_id}/pause", headers={"HX-Request": "true"}) as response:
            assert response.status == 403

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert listening_pids(port) == set()
