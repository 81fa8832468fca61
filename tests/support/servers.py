"""Real local servers for end-to-end tests: the demo API as a check target, and a webhook receiver.

The target imitates the card-creating endpoint of the demo check. Its delay and status can be changed
while a test runs, and it can slow down only for one region (the runner's User-Agent names it).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.waiting import eventually as eventually  # its old home; tests written before the move


@dataclass
class DemoTarget:
    """``POST /api/cards`` → 201 with the card, ``Connection: close``."""

    delay_s: float = 0.0
    status: int = 201
    region_delay_s: dict[str, float] = field(default_factory=dict)
    hits: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def handle(self, request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "")
        region = agent.partition("+region=")[2].rstrip(")")
        body = await request.json() if request.can_read_body else {}
        self.hits.append({"region": region, "agent": agent, "body": body})
        delay = self.region_delay_s.get(region, self.delay_s)
        if delay:
            await asyncio.sleep(delay)
        card = {
            "id": next(self._ids),
            "title": body.get("title"),
            "listId": body.get("listId"),
            "completed": False,
            "dueDate": None,
        }
        return web.json_response(card, status=self.status, headers={"Connection": "close"})


@dataclass
class CardApi:
    """A small card store: ``POST /api/cards`` (201, ``Connection: close``, like :class:`DemoTarget`),
    ``GET``/``DELETE /api/cards/{id}``, ``GET /api/cards`` (all). ``PUT`` answers 405."""

    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    created: int = 0
    deleted: int = 0
    base: str = ""
    #: When set, reading a card needs ``Authorization: Bearer <token>`` (401 otherwise).
    token: str | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def create(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        card = {
            "id": next(self._ids),
            "title": body.get("title"),
            "listId": body.get("listId"),
            "completed": False,
            "dueDate": None,
        }
        self.cards[card["id"]] = card
        self.created += 1
        response = web.json_response(card, status=201, headers={"Connection": "close"})
        response.set_cookie("session", f"s{card['id']}")
        return response

    async def get(self, request: web.Request) -> web.Response:
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        card = self.cards.get(_card_id(request))
        if card is None:
            return web.json_response({"error": "no such card"}, status=404)
        cookie = request.cookies.get("session")
        return web.json_response(card, headers={"X-Session": cookie} if cookie else {})

    async def delete(self, request: web.Request) -> web.Response:
        if self.cards.pop(_card_id(request), None) is None:
            return web.json_response({"error": "no such card"}, status=404)
        self.deleted += 1
        return web.Response(status=204)

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response(list(self.cards.values()))


def _card_id(request: web.Request) -> int:
    text = request.match_info["id"]
    return int(text) if text.isdigit() else -1


@asynccontextmanager
async def card_api() -> AsyncIterator[CardApi]:
    """A running :class:`CardApi`; its ``base`` is e.g. ``http://127.0.0.1:PORT``."""
    api = CardApi()
    app = web.Application()
    app.router.add_post("/api/cards", api.create)
    app.router.add_get("/api/cards", api.list)
    app.router.add_get("/api/cards/{id}", api.get)
    app.router.add_delete("/api/cards/{id}", api.delete)
    async with serve(app) as base:
        api.base = base
        yield api


def demo_scenario(base: str, *, name: str = "seymour-demo-scenario", interval: int = 60) -> dict[str, Any]:
    """The demo check as a scenario: create a card (the seven demo assertions, its id extracted), fetch
    it back by that id, and a teardown that deletes it."""
    single = demo_check(f"{base}/api/cards", "http://127.0.0.1:9/unused")
    return {
        "name": name,
        "regions": single["regions"],
        "interval": interval,
        "timeout": 10,
        "variables": {"base_url": base},
        "steps": [
            {
                "name": "create",
                "request": {**single["request"], "url": "{{ vars.base_url }}/api/cards"},
                "assertions": single["assertions"],
                "extract": [{"name": "id", "source": "json_body", "property": "$.id"}],
            },
            {
                "name": "fetch",
                "request": {"method": "GET", "url": "{{ vars.base_url }}/api/cards/{{ steps.create.id }}"},
                "assertions": [
                    {"source": "status_code", "comparison": "equals", "target": 200},
                    {"source": "json_body", "property": "$.title", "comparison": "equals", "target": "demo"},
                ],
            },
        ],
        "teardown": [
            {
                "name": "delete",
                "request": {"method": "DELETE", "url": "{{ vars.base_url }}/api/cards/{{ steps.create.id }}"},
                "assertions": [{"source": "status_code", "comparison": "equals", "target": 204}],
            }
        ],
    }


@dataclass
class Receiver:
    """Collects JSON POSTs (webhook notifications)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.raw.append(raw)
        self.paths.append(request.path_qs)
        self.received.append(json.loads(raw))
        self.headers.append(dict(request.headers))
        return web.json_response({"ok": True})

    def events(self) -> list[str]:
        """The ``event`` of every notification, in arrival order."""
        return [str(item.get("event")) for item in self.received]


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1 on a free port; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def demo_target() -> AsyncIterator[DemoTarget]:
    """A running :class:`DemoTarget`."""
    target = DemoTarget()
    app = web.Application()
    app.router.add_post("/api/cards", target.handle)
    async with serve(app) as base:
        target.url = f"{base}/api/cards"
        yield target


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    """A running :class:`Receiver`."""
    sink = Receiver()
    app = web.Application()
    app.router.add_post("/hook", sink.handle)
    async with serve(app) as base:
        sink.url = f"{base}/hook"
        yield sink


def demo_check(
    target_url: str, hook_url: str, *, interval: int = 1, name: str = "seymour-demo"
) -> dict[str, Any]:
    """The demo check of the test-loop issue, pointed at local servers."""
    return {
        "name": name,
        "request": {
            "method": "POST",
            "url": target_url,
            "headers": {"Content-Type": "application/json"},
            "body": {"title": "demo", "listId": 1},
        },
        "assertions": [
            {"source": "response_time", "comparison": "less_than", "target": 500},
            {"source": "status_code", "comparison": "equals", "target": 201},
            {"source": "json_body", "property": "$.title", "comparison": "equals", "target": "demo"},
            {"source": "json_body", "property": "$.completed", "comparison": "equals", "target": False},
            {"source": "json_body", "property": "$.dueDate", "comparison": "is_null"},
            {"source": "json_body", "property": "$.id", "comparison": "exists"},
            {"source": "header", "property": "connection", "comparison": "equals", "target": "close"},
        ],
        "regions": ["us-east-1", "eu-north-1", "ca-central-1"],
        "interval": interval,
        "timeout": 10,
        "alerts": [{"channel": "webhook", "url": hook_url, "on": ["failure", "recovery"]}],
    }
