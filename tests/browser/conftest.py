"""A whole embedded Seymour (api + UI, scheduler, router, runners, results, alerts) on a free port, a
controllable demo target, and a headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from services import runtime
from services.api.ui.bootstrap import ensure_admin
from services.common.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEMO_REGIONS = ["us-east-1", "eu-north-1", "ca-central-1"]
ADMIN_PASSWORD = "browser-test-password"
#: The browser test always takes its screenshots; they replace the committed ones in docs/screenshots
#: only when SEYMOUR_UPDATE_SCREENSHOTS=1, so an ordinary test run leaves the work tree clean.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("SEYMOUR_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "seymour-screenshots"
)

HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@dataclass
class Target:
    """The demo API: answers like a card service; ``failing`` makes it answer 503."""

    url: str
    failing: bool = False
    hooks: list[Any] = field(default_factory=list)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    state = Target(url="")

    async def cards(request: web.Request) -> web.Response:
        await request.read()
        if state.failing:
            return web.json_response({"error": "service unavailable"}, status=503)
        body = {"id": 42, "title": "demo", "listId": 1, "completed": False, "dueDate": None}
        return web.json_response(body, status=201, headers={"Connection": "close"})

    async def hook(request: web.Request) -> web.Response:
        state.hooks.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/api/cards", cards)
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


@dataclass
class Seymour:
    """A running embedded Seymour: its base URL and its database (to record what only time would make)."""

    url: str
    sessions: Any


@pytest.fixture
async def seymour(tmp_path: Path) -> AsyncIterator[Seymour]:
    """An embedded Seymour with runners for the demo's three regions."""
    settings = Settings(
        data_dir=tmp_path,
        broker_url="memory://",
        host="127.0.0.1",
        port=0,
        admin_password=ADMIN_PASSWORD,
        heartbeat_interval=1.0,
        results_batch_ms=10.0,
    )
    rt = await runtime.start(settings, runtime.SERVICES, runner_regions=DEMO_REGIONS)
    try:
        await ensure_admin(settings, rt.sessions)
        yield Seymour(f"http://127.0.0.1:{rt.api_port()}", rt.sessions)
    finally:
        await rt.stop()


@pytest.fixture
async def page(seymour: Seymour) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=seymour.url, viewport={"width": 1280, "height": 860})
        context.set_default_timeout(10_000)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        await browser.close()
        assert errors == [], f"JavaScript errors: {errors}"


async def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot of what the user sees (to docs/screenshots/<name>.png when updating them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
