"""``/api/v1/status-pages`` (administrators): status pages, their notices, and check badge tokens."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath

from services.api import badges
from services.api.controllers.shapes import (
    BadgeUrls,
    NoticeList,
    NoticeOut,
    StatusPageList,
    StatusPageOut,
    declared,
)
from services.api.errors import ApiError
from services.api.permissions import admin_only, can_read
from services.api.status_pages import NoticeInput, PageConfig, StatusPageStore, notice_view, page_view, parse


async def _json(request: Request[Any, Any, Any]) -> Any:
    try:
        return await request.json()
    except Exception:
        raise ApiError(
            400, "the body is not valid JSON", [{"field": "body", "message": "not JSON"}]
        ) from None


def _store(request: Request[Any, Any, Any]) -> StatusPageStore:
    return StatusPageStore(request.app.state.sessions)


def forget_rendered(request: Request[Any, Any, Any]) -> None:
    """Drop this process's rendered pages and badges, so a change shows at once."""
    cache = getattr(request.app.state, "status_cache", None)
    if cache is not None:
        cache.entries.clear()


def _page(row: Any) -> StatusPageOut:
    return declared(StatusPageOut, page_view(row))


class StatusPagesController(Controller):
    """Status pages, by id."""

    path = "/api/v1/status-pages"
    opt = admin_only

    @get("/")
    async def list_pages(self, request: Request[Any, Any, Any]) -> StatusPageList:
        """Every status page."""
        return {"items": [_page(row) for row in await _store(request).all()]}

    @post("/", status_code=201)
    async def create_page(self, request: Request[Any, Any, Any]) -> StatusPageOut:
        """Create a page; 422 names each invalid field, 409 when the slug is taken."""
        config = parse(PageConfig, await _json(request), "status page")
        return _page(await _store(request).save(config))

    @get("/{page_id:uuid}")
    async def get_page(self, request: Request[Any, Any, Any], page_id: FromPath[uuid.UUID]) -> StatusPageOut:
        """One page."""
        return _page(await _store(request).get(page_id))

    @put("/{page_id:uuid}")
    async def update_page(
        self, request: Request[Any, Any, Any], page_id: FromPath[uuid.UUID]
    ) -> StatusPageOut:
        """Replace a page's configuration."""
        config = parse(PageConfig, await _json(request), "status page")
        row = await _store(request).save(config, page_id)
        forget_rendered(request)
        return _page(row)

    @delete("/{page_id:uuid}", status_code=204)
    async def delete_page(self, request: Request[Any, Any, Any], page_id: FromPath[uuid.UUID]) -> None:
        """Delete a page and its notices."""
        await _store(request).delete(page_id)
        forget_rendered(request)

    @get("/{page_id:uuid}/notices")
    async def list_notices(self, request: Request[Any, Any, Any], page_id: FromPath[uuid.UUID]) -> NoticeList:
        """A page's notices, newest first."""
        await _store(request).get(page_id)
        return {
            "items": [declared(NoticeOut, notice_view(row)) for row in await _store(request).notices(page_id)]
        }

    @post("/{page_id:uuid}/notices", status_code=201)
    async def post_notice(self, request: Request[Any, Any, Any], page_id: FromPath[uuid.UUID]) -> NoticeOut:
        """Post an incident update or a scheduled-maintenance notice."""
        notice = parse(NoticeInput, await _json(request), "notice")
        row = await _store(request).post_notice(page_id, notice)
        forget_rendered(request)
        return declared(NoticeOut, notice_view(row))


class BadgesController(Controller):
    """A check's badge token and the URLs of its badges."""

    path = "/api/v1/checks/{check_id:uuid}/badges"

    @get("/", **can_read)
    async def badge_urls(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> BadgeUrls:
        """The check's badge URLs (the token is made on first use)."""
        return _urls(await badges.token_for(request.app.state.sessions, check_id))

    @post("/rotate", status_code=200)
    async def rotate(self, request: Request[Any, Any, Any], check_id: FromPath[uuid.UUID]) -> BadgeUrls:
        """A new token: the old badge URLs stop working."""
        token = await badges.token_for(request.app.state.sessions, check_id, rotate=True)
        forget_rendered(request)
        return _urls(token)


def _urls(token: str) -> BadgeUrls:
    return {"token": token, "urls": {kind: f"/badge/{token}/{kind}.svg" for kind in badges.KINDS}}
