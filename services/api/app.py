"""``create_app``: the Litestar application — REST API, health, and (when present) the UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar, MediaType, Router, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from services import __version__
from services.api.auth import token_guard
from services.api.controllers.checks import ChecksController
from services.api.controllers.runs import IncidentsController, RegionsController, RunsController
from services.api.errors import error_handler
from services.common.bus import Publisher
from services.common.settings import Settings


@get("/healthz", media_type=MediaType.JSON, include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok", "version": __version__}


def create_app(
    settings: Settings,
    *,
    sessions: Any,
    bus: Publisher,
    extra_handlers: Sequence[Any] = (),
    on_startup: Sequence[Any] = (),
) -> Litestar:
    """The api app. ``extra_handlers`` lets the UI add its pages without this module knowing them."""
    api = Router(
        path="/",
        route_handlers=[ChecksController, RunsController, RegionsController, IncidentsController],
        guards=[token_guard],
    )
    app = Litestar(
        route_handlers=[healthz, api, *extra_handlers],
        exception_handlers={HTTPException: error_handler},
        openapi_config=OpenAPIConfig(
            title="Seymour",
            version=__version__,
            path="/schema",
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"bearer": []}],
        ),
        on_startup=list(on_startup),
        debug=False,
    )
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.bus = bus
    return app
