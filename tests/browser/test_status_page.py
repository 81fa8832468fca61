"""A public status page in a real browser, anonymously, while one check fails from one region: the
states, the bars and the incident are right, it reads the same without JavaScript, and no URL, header
or secret of any check is anywhere in the HTML."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import expect
from sqlalchemy import select

from services.api.auth import create_token
from services.common.db.models import Incident
from tests.support.waiting import eventually

from .conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_REGIONS, HAVE_CHROMIUM, Seymour, shot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not HAVE_CHROMIUM, reason=f"{CHROMIUM} is missing: apt-get install -y chromium"),
]

FAILING_REGION = "eu-north-1"
SECRET_HEADER = ("X-Internal-Key", "status-page-s3cret-value")


@pytest.fixture
async def shop() -> AsyncIterator[str]:
    """A local API whose cart answers 503 to the runner of one region (its User-Agent names the region)."""

    async def handle(request: web.Request) -> web.Response:
        region = f"+region={FAILING_REGION}" in request.headers.get("User-Agent", "")
        if region and request.path.endswith("/cart"):
            return web.json_response({"error": "unavailable"}, status=503)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def check(name: str, url: str, tags: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "request": {"method": "GET", "url": url, "headers": dict([SECRET_HEADER])},
        "assertions": [{"source": "status_code", "comparison": "equals", "target": 200}],
        "regions": DEMO_REGIONS,
        "interval": 1,
        "timeout": 5,
        "tags": tags,
    }


async def call(seymour: Seymour, token: str, method: str, path: str, body: Any) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, seymour.url + path, json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status < 400, await response.text()
        return await response.json()


async def test_public_status_page_anonymously_with_one_region_failing(
    seymour: Seymour, page: Any, shop: str
) -> None:
    _, token = await create_token(seymour.sessions, "status-page-test")
    urls = {name: f"{shop}/internal/{name}?key=q-secret" for name in ("cart", "login", "search")}
    ids = {
        name: (await call(seymour, token, "POST", "/api/v1/checks", check(name, url, tags)))["id"]
        for name, url, tags in (
            ("cart", urls["cart"], ["shop"]),
            ("login", urls["login"], ["shop"]),
            ("search", urls["search"], ["team:search"]),
        )
    }

    async def cart_incident() -> bool:
        async with seymour.sessions() as session:
            found = await session.scalars(
                select(Incident).where(Incident.check_id == uuid.UUID(ids["cart"]), Incident.state == "open")
            )
            return found.first() is not None

    await eventually(cart_incident, within=30, what="an open incident for the check failing in one region")
    await call(
        seymour,
        token,
        "POST",
        "/api/v1/status-pages",
        {
            "title": "Acme status",
            "slug": "acme",
            "logo_text": "ACME",
            "logo_colour": "#ff6600",
            "public": True,
            "groups": [
                {
                    "name": "Shop",
                    "checks": [
                        {"check_id": ids["cart"], "display_name": "Checkout"},
                        {"check_id": ids["login"], "display_name": "Sign-in"},
                    ],
                },
                {"name": "Search", "tag": "team:search"},
            ],
        },
    )

    await page.goto("/status/acme")
    await expect(page.locator("h1")).to_have_text("Acme status")
    groups = page.locator(".status-group h2")
    await expect(groups).to_have_text(["Shop", "Search"])
    checkout = page.locator('.status-check[data-check="Checkout"]')
    await expect(checkout).to_have_attribute("data-state", "degraded")
    await expect(checkout.locator(".badge")).to_have_text("Degraded")
    await expect(checkout).to_contain_text("Failing in 1 of 3 regions (Stockholm)")
    await expect(page.locator('.status-check[data-check="Sign-in"]')).to_have_attribute(
        "data-state", "operational"
    )
    await expect(page.locator('.status-check[data-check="search"]')).to_have_attribute(
        "data-state", "operational"
    )
    await expect(page.locator(".status-overall")).to_contain_text("Some systems degraded")

    await expect(checkout.locator(".bar")).to_have_count(90)
    today = checkout.locator(".bar").last
    await expect(today).not_to_have_class(re.compile(r"bar-(ok|none)"))
    availability = float(await today.get_attribute("data-availability") or "nan")
    assert 50.0 <= availability <= 80.0, availability  # two of three regions pass
    await expect(page.locator('.status-check[data-check="Sign-in"] .bar').last).to_have_class(
        re.compile("bar-ok")
    )
    await expect(checkout.locator("svg.spark polyline")).to_have_count(1)

    incidents = page.locator(".incidents-open")
    await expect(incidents).to_contain_text("Checkout")
    await expect(incidents).to_contain_text("Stockholm")
    await shot(page, "status-page")

    html = await page.content()
    host = shop.removeprefix("http://")
    for secret in (
        shop,
        host,
        "/internal/",
        "q-secret",
        *SECRET_HEADER,
        "status_code",
        "cart",
        "login",
        *DEMO_REGIONS,
        "runner",
    ):
        assert secret not in html, secret

    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=page.url.split("/status")[0], java_script_enabled=False)
        plain = await context.new_page()
        await plain.goto("/status/acme")
        await expect(plain.locator('.status-check[data-check="Checkout"]')).to_have_attribute(
            "data-state", "degraded"
        )
        await expect(plain.locator('.status-check[data-check="Checkout"] .bar')).to_have_count(90)
        await expect(plain.locator(".incidents-open")).to_contain_text("Checkout")
        await browser.close()
