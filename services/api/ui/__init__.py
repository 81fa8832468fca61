"""The web UI: server-rendered pages with htmx, behind a login; ``route_handlers()`` is all it exports."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.static_files import create_static_files_router

from services.api.errors import status_of
from services.api.permissions import permission_guard
from services.api.ui.login import login, login_form, logout
from services.api.ui.pages import CheckPages
from services.api.ui.security import CsrfRejected, LoginRequired, csrf_rejected, login_redirect, session_guard
from services.api.ui.settings_pages import SettingsPages
from services.api.ui.status_admin import StatusPagesAdmin
from services.api.ui.status_public import public_handlers
from services.api.ui.templating import STATIC, template_config
from services.common.errors import DomainError

__all__ = ["route_handlers", "template_config"]


def error_page(request: Request[Any, Any, Any], exc: Exception) -> Template:
    """Errors on pages as a page (the REST API keeps its JSON error bodies)."""
    status, detail = 500, "Something went wrong."
    if isinstance(exc, DomainError):
        status, detail = status_of(exc), exc.detail
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
    user = getattr(request.state, "user", None)
    return Template(
        template_name="pages/error.html",
        context={
            "status": status,
            "detail": detail,
            "user": user,
            "csrf": user.csrf_token if user else "",
            "request_path": request.url.path,
        },
        status_code=status,
    )


def route_handlers() -> list[Any]:
    """Static files, login/logout, and every page behind the session guard."""
    return [
        create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
        login_form,
        login,
        logout,
        *public_handlers(),
        Router(
            path="/",
            route_handlers=[CheckPages, SettingsPages, StatusPagesAdmin],
            guards=[session_guard, permission_guard],
            exception_handlers={
                LoginRequired: login_redirect,
                CsrfRejected: csrf_rejected,
                HTTPException: error_page,
                DomainError: error_page,
            },
            include_in_schema=False,
        ),
    ]
