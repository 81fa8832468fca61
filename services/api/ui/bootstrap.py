"""The first admin: from SEYMOUR_ADMIN_PASSWORD, or generated and shown once when nobody can log in."""

from __future__ import annotations

import logging
import secrets

from services.api.accounts import count_users, create_user, find_user
from services.common.db.sessions import Sessions
from services.common.errors import NotFound
from services.common.settings import Settings

log = logging.getLogger(__name__)


async def ensure_admin(settings: Settings, sessions: Sessions) -> list[str]:
    """Make sure someone can log in; returns lines to print (a generated password appears only here)."""
    username = settings.admin_username
    if settings.admin_password:
        try:
            await find_user(sessions, username=username)
        except NotFound:
            await create_user(sessions, username, settings.admin_password, is_admin=True)
            log.info("admin created from SEYMOUR_ADMIN_PASSWORD user=%s", username)
            return [f"Admin user '{username}' created from SEYMOUR_ADMIN_PASSWORD."]
        return []
    if await count_users(sessions):
        return []
    password = secrets.token_urlsafe(12)
    await create_user(sessions, username, password, is_admin=True)
    log.info("admin created with a generated password user=%s", username)
    return [
        f"Log in as '{username}' with password: {password}",
        "(shown once; change it under Settings, or set SEYMOUR_ADMIN_PASSWORD before the first start)",
    ]
