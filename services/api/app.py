"""``create_app``: the Litestar application — REST API, health, and the UI."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from litestar import Litestar, MediaType, Router, get
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from services import __version__
from services.api.auth import token_guard
from services.api.controllers.alerts import (
    AlertSettingsController,
    IncidentsController,
    NotificationsController,
    prometheus_metrics,
)
from services.api.controllers.checks import ChecksController, TagsController
from services.api.controllers.globals import GlobalSecretsController, GlobalVariablesController
from services.api.controllers.run_sets import RunSetsController
from services.api.controllers.runs import RegionsController, RunsController
from services.api.controllers.status_pages import BadgesController, StatusPagesController
from services.api.controllers.summary import CheckSummaryController
from services.api.controllers.tokens import TokensController
from services.api.controllers.users import UsersController
from services.api.errors import error_handler
from services.api.headers import security_headers
from services.api.permissions import permission_guard
from services.api.throttle import LoginThrottle
from services.api.ui import route_handlers as ui_route_handlers
from services.api.ui import template_config
from services.api.ui.check_rows import RowCache
from services.common.bus import Publisher, asyncapi
from services.common.channels.probe import ProbeLimiter
from services.common.db.engine import read_only
from services.common.db.sessions import Sessions
from services.common.errors import DomainError
from services.common.secretbox import LazyBox
from services.common.settings import Settings


@get("/healthz", media_type=MediaType.JSON, include_in_schema=False)
async def healthz() -> dict[str, str]:
    """Liveness: the process serves requests."""
    return {"status": "ok", "version": __version__}


@get(
    "/schema/asyncapi.json",
    media_type=MediaType.JSON,
    include_in_schema=False,
    guards=[token_guard, permission_guard],
)
async def asyncapi_schema() -> dict[str, Any]:
    """The bus's AsyncAPI 3.0 document (contracts and topology), next to the REST API's OpenAPI schema."""
    return asyncapi.document(__version__)


def create_app(
    settings: Settings,
    *,
    sessions: Sessions,
    bus: Publisher,
    extra_handlers: Sequence[Any] = (),
    on_startup: Sequence[Any] = (),
) -> Litestar:
    """The api app: REST under ``/api/v1`` (Bearer tokens), the UI (sessions), ``/healthz``, ``/schema``
    (OpenAPI) and ``/schema/asyncapi.json`` (the bus)."""
    api = Router(
        path="/",
        route_handlers=[
            ChecksController,
            TagsController,
            CheckSummaryController,
            RunsController,
            RunSetsController,
            StatusPagesController,
            BadgesController,
            RegionsController,
            IncidentsController,
            NotificationsController,
            AlertSettingsController,
            UsersController,
            TokensController,
            GlobalVariablesController,
            GlobalSecretsController,
            prometheus_metrics,
        ],
        guards=[token_guard, permission_guard],
    )
    app = Litestar(
        route_handlers=[healthz, asyncapi_schema, api, *ui_route_handlers(), *extra_handlers],
        template_config=template_config(),
        exception_handlers={HTTPException: error_handler, DomainError: error_handler},
        openapi_config=OpenAPIConfig(
            title="Seymour",
            version=__version__,
            path="/schema",
            openapi_router=Router(path="/schema", route_handlers=[], guards=[token_guard, permission_guard]),
            components=Components(security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"bearer": []}],
        ),
        on_startup=list(on_startup),
        after_request=security_headers,
        debug=False,
        logging_config=None,
    )
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.login_throttle = LoginThrottle()
    app.state.reads = read_only(sessions)
    app.state.bus = bus
    app.state.test_sends = ProbeLimiter()
    app.state.row_cache = RowCache()
    app.state.secretbox = LazyBox(settings)
    return app
