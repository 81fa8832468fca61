"""Api composition root: settings → app → server (and the first admin, when one is configured)."""

from __future__ import annotations

import logging

from services.api.app import create_app
from services.api.server import ApiServer
from services.common.bus import Bus
from services.common.db.sessions import Sessions
from services.common.errors import Conflict
from services.common.service import Service
from services.common.settings import Settings

log = logging.getLogger(__name__)


class FirstAdmin:
    """Creates the admin from ``SEYMOUR_ADMIN_PASSWORD`` on first start of a served api.

    Unlike ``seymour up`` it never generates a password: a server's output ends up in log files, and a
    password must not. Without one, it says how to create a user.
    """

    def __init__(self, settings: Settings, sessions: Sessions) -> None:
        self._settings = settings
        self._sessions = sessions

    async def start(self) -> None:
        """Create the admin if configured and missing (two api processes racing is fine)."""
        from services.api.accounts import count_users
        from services.api.ui.bootstrap import ensure_admin

        if self._settings.admin_password:
            try:
                await ensure_admin(self._settings, self._sessions)
            except Conflict:  # create_user reports the unique name as a domain conflict
                log.info("admin already created by another api process")
        elif not self._settings.broker_url.startswith("memory://") and not await count_users(self._sessions):
            # (``seymour up`` — the in-process bus — generates and prints a first password itself.)
            log.warning("no user can log in yet: run 'seymour user create' or set SEYMOUR_ADMIN_PASSWORD")

    async def stop(self) -> None:
        """Nothing to stop."""


def build(settings: Settings, bus: Bus, sessions: Sessions) -> Service:
    """The api: an HTTP server; it consumes nothing."""
    app = create_app(settings, sessions=sessions, bus=bus)
    return Service(
        "api",
        lifecycles=[
            FirstAdmin(settings, sessions),
            ApiServer(
                app,
                settings.host,
                settings.port,
                reuse_port=settings.api_reuse_port,
                trusted_proxies=settings.trusted_proxies,
            ),
        ],
    )
