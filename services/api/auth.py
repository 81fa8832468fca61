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
from services.common.db.models import ApiToken, User

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


#: Where the guard leaves whether the caller may administer (users, tokens, global settings).
ADMIN_SCOPE_KEY = "seymour_admin"


async def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admit a request with a valid Bearer token (otherwise 401) and note whether it may administer.

    Administrators: ``SEYMOUR_API_TOKEN``, tokens of admin users, and tokens that belong to no user
    (made by an admin through the API, or the local CLI token of ``seymour up``).
    """
    state = connection.app.state
    token = bearer(connection)
    if token is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>")
    admin = state.settings.api_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        connection.scope[ADMIN_SCOPE_KEY] = True  # type: ignore[literal-required]
        return
    digest = hash_token(token)
    async with state.sessions() as session, session.begin():
        found = (
            await session.execute(
                select(ApiToken.id, ApiToken.user_id, User.is_admin)
                .outerjoin(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            )
        ).one_or_none()
        if found is None:
            raise ApiError(401, "invalid or revoked token")
        token_id, user_id, is_admin = found
        await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))
    connection.scope[ADMIN_SCOPE_KEY] = user_id is None or bool(is_admin)  # type: ignore[literal-required]


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """403 unless :func:`token_guard` found an administrator's token."""
    if not connection.scope.get(ADMIN_SCOPE_KEY):
        raise ApiError(403, "this needs an administrator's token")
