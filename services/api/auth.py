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
from services.api.permissions import Scope, grants, has, remember
from services.common.db.models import ApiToken, User
from services.common.db.sessions import Sessions

TOKEN_PREFIX = "sey_"


def hash_token(token: str) -> str:
    """SHA-256 of a token: what the database keeps (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    sessions: Sessions, name: str, user_id: Any = None, *, scope: Scope = "full"
) -> tuple[ApiToken, str]:
    """Store a new token and return it with its plain value (shown once, never again).

    A ``full`` token acts with its owner's role (an admin's when it has no owner); a ``run`` token can
    only trigger runs and read checks and their results, whoever owns it.
    """
    token = new_token()
    row = ApiToken(name=name, token_hash=hash_token(token), prefix=token[:10], user_id=user_id, scope=scope)
    async with sessions() as session, session.begin():
        session.add(row)
    return row, token


def bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Admit a request with a valid Bearer token (otherwise 401) and note what it may do.

    ``SEYMOUR_API_TOKEN`` and tokens that belong to no user (made by an admin through the API, or the
    local CLI token of ``seymour up``) act as an admin; a user's token acts with the user's role; either
    is narrowed by the token's scope. :func:`permission_guard` then checks the route's permission.
    """
    state = connection.app.state
    token = bearer(connection)
    if token is None:
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>")
    admin = state.settings.api_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        remember(connection, grants("admin"), None)
        return
    digest = hash_token(token)
    async with state.sessions() as session, session.begin():
        found = (
            await session.execute(
                select(ApiToken.id, ApiToken.user_id, ApiToken.scope, User.role)
                .outerjoin(User, User.id == ApiToken.user_id)
                .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
            )
        ).one_or_none()
        if found is None:
            raise ApiError(401, "invalid or revoked token")
        token_id, user_id, scope, role = found
        await session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utcnow()))
    remember(connection, grants(role if user_id is not None else "admin", scope), user_id)


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """403 unless the caller is an administrator (prefer ``opt=admin_only`` on a handler or controller)."""
    if not has(connection, "admin"):
        raise ApiError(403, "this needs an administrator's token")
