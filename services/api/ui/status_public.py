"""Public status pages and badges: no login, nothing but display names, figures and incident times.

Each page is rendered at most once per :data:`FRESH_S` seconds per process and served from memory in
between; when it goes stale, one request renders it again while the others keep getting the last
copy, so a busy database or api slows the page's refresh, not its answers.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from contracts.v1.base import utcnow
from services.api import badges
from services.api.status_pages import StatusPageStore
from services.api.status_view import DailyCache, page_context

log = logging.getLogger(__name__)

FRESH_S: Final = 15.0
Req = Request[Any, Any, Any]


@dataclass
class Rendered:
    """One rendered body, gzipped once (a 40-check page is ~450 KB of bars, ~25 KB gzipped), and when
    it was made."""

    body: bytes
    etag: str
    made: float
    gzipped: bytes = b""


@dataclass
class PageCache:
    """Rendered status pages and badges, by key, with one refresh at a time per key."""

    fresh_s: float = FRESH_S
    entries: dict[str, Rendered] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    daily: DailyCache = field(default_factory=DailyCache)

    async def get(self, key: str, make: Any) -> Rendered:
        """The cached body of ``key``; ``make()`` renders it when missing or stale (stale copies are
        served while another request renders)."""
        entry = self.entries.get(key)
        now = time.monotonic()
        if entry is not None and now - entry.made < self.fresh_s:
            return entry
        lock = self.locks.setdefault(key, asyncio.Lock())
        if entry is not None and lock.locked():
            return entry
        async with lock:
            entry = self.entries.get(key)
            if entry is not None and time.monotonic() - entry.made < self.fresh_s:
                return entry
            body: bytes = await make()
            entry = Rendered(
                body, hashlib.sha256(body).hexdigest()[:32], time.monotonic(), gzip.compress(body, 6)
            )
            self.entries[key] = entry
            return entry


def cache_of(request: Req) -> PageCache:
    """The app's page cache (made on first use)."""
    state = request.app.state
    if not hasattr(state, "status_cache"):
        state.status_cache = PageCache()
    cache: PageCache = state.status_cache
    return cache


def _respond(request: Req, entry: Rendered, media_type: str) -> Response[bytes]:
    headers = {
        "Cache-Control": f"public, max-age={int(FRESH_S)}",
        "ETag": f'"{entry.etag}"',
        "X-Content-Type-Options": "nosniff",
        # the same address answers a whole page or, to htmx, its body: caches must keep them apart
        "Vary": "HX-Request, Accept-Encoding",
    }
    if request.headers.get("if-none-match") == f'"{entry.etag}"':
        return Response(b"", status_code=304, headers=headers, media_type=media_type)
    if entry.gzipped and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(entry.gzipped, headers=headers, media_type=media_type)
    return Response(entry.body, headers=headers, media_type=media_type)


async def render_page(
    request: Req, slug: str, *, partial: bool = False, allow_private: bool = False
) -> bytes:
    """The page's HTML (or its body alone for htmx); 404 when there is no such public page."""
    sessions = request.app.state.sessions
    page = await StatusPageStore(sessions).by_slug(slug)
    if page is None or not (page.public or allow_private):
        raise NotFoundException(f"no status page '{slug}'")
    context = await page_context(sessions, page, now=utcnow(), cache=cache_of(request).daily)
    engine = request.app.template_engine
    assert engine is not None
    template = engine.get_template("partials/status_body.html" if partial else "pages/status_public.html")
    html: str = template.render(**context, partial=partial)
    return html.encode()


NOT_FOUND: Final = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title>'
    b'<link rel="stylesheet" href="/static/seymour.css"></head><body><main class="container">'
    b'<h1>No such status page</h1><p class="muted">Check the address, or ask whoever shared it.</p>'
    b"</main></body></html>"
)


@get("/status/{slug:str}", include_in_schema=False, media_type="text/html")
async def public_status_page(request: Req, slug: FromPath[str]) -> Response[bytes]:
    """A public status page (htmx requests get the body only); a friendly 404 page otherwise."""
    partial = request.headers.get("hx-request") == "true"
    key = f"page:{slug}:{'partial' if partial else 'full'}"
    try:
        entry = await cache_of(request).get(key, lambda: render_page(request, slug, partial=partial))
    except NotFoundException:
        return Response(NOT_FOUND, status_code=404, media_type="text/html; charset=utf-8")
    return _respond(request, entry, "text/html; charset=utf-8")


@get("/status/{slug:str}/badge.svg", include_in_schema=False, media_type="image/svg+xml")
async def status_page_badge(
    request: Req, slug: FromPath[str], kind: FromQuery[str] = "status"
) -> Response[bytes]:
    """A badge of a public page's checks taken together (``?kind=`` one of :data:`badges.KINDS`)."""
    if kind not in badges.KINDS:
        raise NotFoundException(f"no badge '{kind}'")

    async def make() -> bytes:
        sessions = request.app.state.sessions
        page = await StatusPageStore(sessions).by_slug(slug)
        if page is None or not page.public:
            raise NotFoundException(f"no status page '{slug}'")
        groups = await StatusPageStore(sessions).resolve(page)
        ids = list(dict.fromkeys(c.check_id for g in groups for c in g.checks))
        label, message, colour = await badges.figures(sessions, ids, kind)
        return badges.svg(label, message, colour).encode()

    entry = await cache_of(request).get(f"page-badge:{slug}:{kind}", make)
    return _respond(request, entry, "image/svg+xml")


@get("/badge/{token:str}/{kind:str}", include_in_schema=False, media_type="image/svg+xml")
async def check_badge(request: Req, token: FromPath[str], kind: FromPath[str]) -> Response[bytes]:
    """A check's badge by its badge token: ``status.svg``, ``uptime-24h.svg``, ``uptime-7d.svg``,
    ``uptime-30d.svg`` or ``p95.svg``. An unknown token is a 404 like any other."""
    name = kind.removesuffix(".svg")
    if name not in badges.KINDS:
        raise NotFoundException("no such badge")

    async def make() -> bytes:
        sessions = request.app.state.sessions
        check_id: uuid.UUID | None = await badges.check_of_token(sessions, token)
        if check_id is None:
            raise NotFoundException("no such badge")
        label, message, colour = await badges.figures(sessions, [check_id], name)
        return badges.svg(label, message, colour).encode()

    entry = await cache_of(request).get(f"badge:{hashlib.sha256(token.encode()).hexdigest()}:{name}", make)
    return _respond(request, entry, "image/svg+xml")


def public_handlers() -> list[Any]:
    """The routes that need no login."""
    return [public_status_page, status_page_badge, check_badge]
