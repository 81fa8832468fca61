"""Bearer-token authentication for the REST API: ``SEYMOUR_API_TOKEN`` (admin) or stored tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from sqlalchemy import select, update

from contracts.v1.base import utcnow
from services.api.errors import ApiError
from services.common.db.models import ApiToken

TOKEN_PREFIX = "sey_"


def hash_token(token: str) -> str:
    """SHA-256 of a token: what the database keeps (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(sessions: Any, name: str, user_id: Any = None) -> tuple[ApiToken, str]:
    """Store a new token and return it with its plain value (shown once, never again)."""
    token = new_token()
    row = ApiToken(name=name, token_hash=hash_token(token), prefix=token[:10], user_id=user_id)
    async with sessions() as session, session.begin():
        session.add(row)
    return row, token


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admit a request with a valid Bearer token; otherwise 401."""
    state = connection.app.state
    token = bearer(connection)
    if token is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>")
    admin = state.settings.api_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return
    digest = hash_token(token)
    async with state.sessions() as session, session.begin():
        row = (
            await session.execute(
                select(ApiToken.id).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            )
        ).scalar_one_or_none()
        if row is None:
            raise ApiError(401, "invalid or revoked token")
        await session.execute(update(ApiToken).where(ApiToken.id == row).values(last_used_at=utcnow()))
