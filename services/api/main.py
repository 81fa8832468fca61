"""Api composition root: settings → app → server."""

from __future__ import annotations

from typing import Any

from services.api.app import create_app
from services.api.server import ApiServer
from services.common.bus import Bus
from services.common.service import Service
from services.common.settings import Settings


def build(settings: Settings, bus: Bus, sessions: Any) -> Service:
    """The api: an HTTP server; it consumes nothing."""
    app = create_app(settings, sessions=sessions, bus=bus)
    return Service("api", lifecycles=[ApiServer(app, settings.host, settings.port)])
