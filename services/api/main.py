"""Api composition root: settings → app → server."""

from __future__ import annotations

from typing import Any

from services.api.app import create_app
from services.api.server import ApiServer
from services.common.bus import Bus
from services.common.service import Service
from services.common.settings import Settings


def ui_handlers() -> list[Any]:
    """The UI's route handlers, if the UI package is installed (it is part of the same distribution)."""
    try:
        from services.api.ui import route_handlers
    except ImportError:
        return []
    return list(route_handlers())


def build(settings: Settings, bus: Bus, sessions: Any) -> Service:
    """The api: an HTTP server; it consumes nothing."""
    app = create_app(settings, sessions=sessions, bus=bus, extra_handlers=ui_handlers())
    return Service("api", lifecycles=[ApiServer(app, settings.host, settings.port)])
